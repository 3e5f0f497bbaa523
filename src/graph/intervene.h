/* Interventions (DESIGN §1.5): checking ag_intervention arrays, turning them into forward edits
 * (engine/forward.h), and the runner shared by ag_intervene, validation and steered generation.
 *
 * One forward implementation serves every mode; a mode is only a freeze descriptor:
 *   DIRECT = AGI_FREEZE_DIRECT, delta run      LINEAR = AGI_FREEZE_LINEAR, delta run
 *   FREE   = the chosen subset of AGI_FREEZE_LINEAR, a plain (full-value) run
 *
 * ---- Transcoder features (intervene_tc.c) --------------------------------------------------
 * A feature f of layer l with decoder rows W_dec[f][o] (o = 0 for a PLT, 0..L-1-l for a CLT) is
 * clamped the way circuit-tracer does it: delta = new value - current activation, and
 * delta * W_dec[f][o] is added to the MLP output of block l + o. Edits of kind
 * AGI_EDIT_CLAMP_FEATURE; the forward's MLP extension (agi_mlp_ext) applies them:
 *   AGI_TC_DIRECT   every MLP output frozen: current = the clean activation, a fixed vector.
 *   AGI_TC_REAL     the real MLPs run (FREE, generation): current = act(encoder) of the run's
 *                   read-point row; the delta is kept per (edit, position) for later layers.
 *   AGI_TC_LINEAR   (delta runs) the replacement model: every MLP output replaced by
 *                   sum_s a_s W_dec[s -> l] with a = mult * (W_enc . x) recomputed, the rest of
 *                   the output (error, b_dec, skip) held: its change is 0.
 *   AGI_TC_REPLACE  (full runs, FREE + free_replacement) the same with a = act(W_enc . x + b_enc)
 *                   (or mult * pre, multipliers frozen) plus the held rest.
 * Position 0 holding BOS has no features (as in graphs): its MLP output is never replaced and
 * no clamp applies there.
 */
#ifndef AGI_INTERVENE_H
#define AGI_INTERVENE_H

#include "attrgraph.h"
#include "engine/acts.h"
#include "engine/forward.h"
#include "model/model.h"
#include "transcoder/transcoder.h"

/* ---- transcoder features (intervene_tc.c) ---- */

/* agi_tc_bos0 and agi_tc_check_model: transcoder/transcoder.h */

/* The clean side of a set on one trace. */
typedef struct agi_tc_clean {
    const ag_transcoder *tc;
    int L, T, F, D, bos0;
    float *acts; /* [L][T][F] clean activations (0 at BOS) */
    float *mult; /* [L][T][F] a / pre at the trace (0 where a = 0) */
    float *rest; /* [L][T][D] mlp_out - sum_s a_s W_dec[s -> l]: reconstruction error, b_dec and
                    skip (the whole output at BOS) */
} agi_tc_clean;

ag_status agi_tc_clean_make(agi_tc_clean *c, const ag_transcoder *tc, const ag_trace *tr, const char *func);
void agi_tc_clean_free(agi_tc_clean *c);

enum { AGI_TC_DIRECT = 1, AGI_TC_REAL = 2, AGI_TC_LINEAR = 3, AGI_TC_REPLACE = 4 };

/* The per-run state of a set: the forward's MLP extension (ext first). */
typedef struct agi_tc_run {
    agi_mlp_ext ext;
    const ag_transcoder *tc;
    const agi_tc_clean *clean; /* NULL only for AGI_TC_REAL (generation) */
    int kind;                  /* AGI_TC_* */
    int freeze_mult;           /* AGI_TC_REPLACE: a = mult * pre instead of act(pre) */
    const float *mult;         /* [L][T][F] multipliers (LINEAR, frozen REPLACE): clean->mult or
                                  the caller's (validation holds features with a 0) */
    int T, bos0, n_edits;
    float *acts;               /* [L][T][F] LINEAR / REPLACE: the run's activations (LINEAR: changes) */
    float *row;                /* [T][F] scratch */
    float *fdelta;             /* [n_edits][T] REAL: new - current of each feature clamp */
} agi_tc_run;

/* kind AGI_TC_* for sequences of T positions (clean: the trace's, or NULL for AGI_TC_REAL). */
ag_status agi_tc_run_init(agi_tc_run *r, const ag_transcoder *tc, const agi_tc_clean *clean, int kind, int freeze_mult,
                          int T, int bos0, int n_edits, const char *func);
/* Before each run: the activations at their clean values (full runs) or 0 (delta runs). */
void agi_tc_run_reset(agi_tc_run *r, int delta);
void agi_tc_run_free(agi_tc_run *r);

/* ---- items ---- */

/* Check items against a model, an optional transcoder set (AG_SITE_FEATURE items need one; it
 * must already fit the model) and a sequence of T positions (trace: its length; generation:
 * the model's seq_len); bos0: position 0 holds BOS. Errors name the field:
 * "func: items[i].layer = 9 is outside [0, 5)". */
ag_status agi_interventions_check(const ag_model *m, const ag_transcoder *tc, const ag_intervention *items, size_t n,
                                  int T, int bos0, const char *func);

/* Forward edits for checked items; open ranges end at T. With clean != NULL (a trace's acts)
 * unit clamps are resolved against the clean values, one edit per position (mul = 0; features
 * against fc->acts, BOS skipped); with clean == NULL SCALE and unit ADD are relative to the
 * current value (generation). *out is malloc'ed (free()), *n_out its count (0: *out may be
 * NULL). */
ag_status agi_interventions_edits(const ag_model *m, const ag_intervention *items, size_t n, const agi_acts *clean,
                                  const agi_tc_clean *fc, int bos0, int T, agi_edit **out, int *n_out, const char *func);

/* The freeze flags and delta flag of a mode (opts already validated). */
void agi_intervene_mode(const ag_intervene_options *o, unsigned *freeze, int *delta);

/* Run edits on top of `clean` (B = 1 trace acts) into `work` (allocated like clean), with an
 * optional MLP extension (reset by the caller). Free runs leave full values in work, delta
 * runs differences. Only blocks from the lowest edited layer and positions from the earliest
 * edited one are recomputed. */
void agi_intervene_run(const ag_model *m, const agi_acts *clean, const agi_edit *edits, int n_edits,
                       unsigned freeze, int delta, agi_mlp_ext *mlp, agi_acts *work);

#endif
