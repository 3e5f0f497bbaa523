/* Interventions (DESIGN §1.5): checking ag_intervention arrays, turning them into forward edits
 * (engine/forward.h), and the runner shared by ag_intervene, validation and steered generation.
 *
 * One forward implementation serves every mode; a mode is only a freeze descriptor:
 *   DIRECT = AGI_FREEZE_DIRECT, delta run      LINEAR = AGI_FREEZE_LINEAR, delta run
 *   FREE   = the chosen subset of AGI_FREEZE_LINEAR, a plain (full-value) run
 *
 * ---- Hook for transcoder features (issue #6) ------------------------------------------------
 * A feature f of layer l with decoder rows W_dec[f][l'] (l' = l for a PLT, l..L-1 for a CLT)
 * is clamped the way circuit-tracer does it: delta = value - current activation, and
 * delta * W_dec[f][l'] is added to the MLP output of every layer l' it writes to.
 *   - DIRECT (MLP outputs frozen): current = the clean activation, so the change is a fixed
 *     vector: express it with AGI_EDIT_ADD_RESID edits at layer l'+1 (x[l'+1] += delta * dec);
 *     no encoder is needed. Feature targets' values are W_enc . u (no bias) from the run's u.
 *   - LINEAR / FREE: the MLP output of the layer must be the transcoder's output (features from
 *     the encoder on the current u, activation function, decoder) plus the frozen error
 *     (mlp_out_clean - reconstruction_clean); LINEAR freezes each feature's multiplier
 *     a/pre-activation. Add that as a replacement branch of agi_forward_ctl_mlp_neurons /
 *     _mlp_out selected by a `const agi_transcoders *` in agi_fwd_ctl, with a clamp edit kind
 *     for features applied between encode and decode, and accept a feature site in
 *     agi_interventions_check (today it rejects every unit site but AG_SITE_MLP).
 */
#ifndef AGI_INTERVENE_H
#define AGI_INTERVENE_H

#include "attrgraph.h"
#include "engine/acts.h"
#include "engine/forward.h"
#include "model/model.h"

/* Check items against a model and a sequence of T positions (trace: its length; generation:
 * the model's seq_len). Errors name the field: "func: items[i].layer = 9 is outside [0, 5)". */
ag_status agi_interventions_check(const ag_model *m, const ag_intervention *items, size_t n, int T,
                                  const char *func);

/* Forward edits for checked items; open ranges end at T. With clean != NULL (a trace's acts)
 * unit clamps are resolved against the clean values, one edit per position (mul = 0); with
 * clean == NULL SCALE and unit ADD are relative to the current value (generation). *out is
 * malloc'ed (free()), *n_out its count (0: *out may be NULL). */
ag_status agi_interventions_edits(const ag_model *m, const ag_intervention *items, size_t n, const agi_acts *clean,
                                  int T, agi_edit **out, int *n_out, const char *func);

/* The freeze flags and delta flag of a mode (opts already validated). */
void agi_intervene_mode(const ag_intervene_options *o, unsigned *freeze, int *delta);

/* Run edits on top of `clean` (B = 1 trace acts) into `work` (allocated like clean). Free runs
 * leave full values in work, delta runs differences. Only blocks from the lowest edited layer
 * and positions from the earliest edited one are recomputed. */
void agi_intervene_run(const ag_model *m, const agi_acts *clean, const agi_edit *edits, int n_edits,
                       unsigned freeze, int delta, agi_acts *work);

#endif
