/* The decomposition method (DESIGN §1.2, §1.3): exact contributions of a site in the local
 * replacement model. With every norm scale, attention pattern and SwiGLU gate factor frozen
 * at the trace's values, the model is linear (and, without biases, homogeneous) in the
 * activations of any site, so f = sum_i J_i z_i exactly, J the frozen model's Jacobian at the
 * site: the attributions z ⊙ J sum to the target's value. That is the gradient method run
 * through agi_backward with the freeze flags (norms, attention OV path only, gates):
 * agi_site_gradient_vjp (gradient.c) with frozen = 1.
 *
 * Residual sites (embed, resid.L, mid.L) carry everything: the sum is f. The branch sites
 * (attn.L, mlp.L) carry only what flows through the branch; the skipping residual's share is
 * reported as baseline_value, computed independently as J(after the branch) · (residual
 * before it) (mlp.L: J at resid.L+1 dotted with x_L^mid; attn.L: J at mid.L dotted with x_L),
 * so completeness_error = sum - (f - baseline_value) checks the decomposition to rounding.
 *
 * Targets must be linear in the frozen model: logit, demeaned logit, logit difference,
 * direction, unit. Log-probabilities and probabilities are not (AG_ERR_UNSUPPORTED). */
#include "core/core.h"
#include "methods/method.h"

static ag_status dec_vjp(void *state, const agi_target *targets, int B, agi_method_result *res) {
    const agi_site_state *s = state;
    for (int b = 0; b < B; b++)
        if (targets[b].kind == AG_TARGET_LOGPROB || targets[b].kind == AG_TARGET_PROB)
            return agi_error(AG_ERR_UNSUPPORTED, s->func,
                             "the decomposition method needs a target that is linear in the frozen model "
                             "(logit, demeaned-logit, logit difference, direction or unit), not a %s",
                             targets[b].kind == AG_TARGET_PROB ? "probability" : "log-probability");
    return agi_site_gradient_vjp(state, targets, B, res, 1);
}

const agi_method agi_method_decomposition = {"decomposition", AG_METHOD_DECOMPOSITION, agi_site_state_prepare, dec_vjp,
                                             agi_site_state_release};
