/* top_tokens: print the most likely next tokens after a prompt.
 *
 *   top_tokens MODEL TOKENIZER PROMPT [K]
 *
 * MODEL is a llama2.c .bin or a GGUF file; TOKENIZER a llama2.c tokenizer .bin, or "-" to
 * use the vocabulary inside a GGUF file. Prints the prompt's tokens, then the K (default 5)
 * most likely next tokens with their probabilities, one per line:
 *
 *   $ top_tokens stories260K.bin tok512.bin "Once upon a" 3
 *   prompt: 4 tokens: 1 403 407 261
 *    1. " time"   p=0.9871  (id 408)
 *   ...
 *
 * Uses only the public API (attrgraph.h) and shows its error handling: every call returns
 * an ag_status, and ag_last_error() names the function and the problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <attrgraph.h>

static int fail(const char *what, ag_status st) {
    fprintf(stderr, "top_tokens: %s failed (%s): %s\n", what, ag_status_string(st), ag_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER|- PROMPT [K]\n", argv[0]);
        return 2;
    }
    int k = argc == 5 ? atoi(argv[4]) : 5;
    if (k < 1) k = 1;

    ag_model_options mo;
    ag_status st = AG_MODEL_OPTIONS_INIT(mo);
    if (st != AG_OK) return fail("ag_model_options_init", st);
    if (argv[2][0] != '-' || argv[2][1] != '\0') mo.tokenizer_path = argv[2];

    ag_model *model = NULL;
    ag_trace *trace = NULL;
    int32_t *tokens = NULL;
    int rc = 1;

    if ((st = ag_model_load(&model, argv[1], &mo)) != AG_OK) {
        fail("ag_model_load", st);
        goto done;
    }

    /* Ask for the token count first (cap 0), then encode; BOS is prepended. */
    size_t n = 0;
    st = ag_tokenize(model, argv[3], 1, NULL, 0, &n);
    if (st != AG_OK && st != AG_ERR_BUFFER_TOO_SMALL) {
        fail("ag_tokenize", st);
        goto done;
    }
    tokens = malloc((n ? n : 1) * sizeof *tokens);
    if (!tokens) {
        fprintf(stderr, "top_tokens: out of memory\n");
        goto done;
    }
    if ((st = ag_tokenize(model, argv[3], 1, tokens, n, &n)) != AG_OK) {
        fail("ag_tokenize", st);
        goto done;
    }
    printf("prompt: %zu tokens:", n);
    for (size_t i = 0; i < n; i++) printf(" %d", (int)tokens[i]);
    printf("\n");

    /* One forward pass over the prompt; the trace caches every activation. */
    if ((st = ag_trace_create(&trace, model, tokens, n, NULL)) != AG_OK) {
        fail("ag_trace_create", st);
        goto done;
    }
    const float *logits;
    int64_t shape[3];
    int32_t ndim;
    if ((st = ag_trace_tensor(trace, AG_TENSOR_LOGITS, 0, &logits, shape, &ndim)) != AG_OK) {
        fail("ag_trace_tensor", st);
        goto done;
    }
    int64_t V = shape[1];
    const float *last = logits + (shape[0] - 1) * V; /* logits[T][V]: the last position */

    /* Softmax in double, then K passes of "largest not yet printed". */
    double mx = last[0], z = 0.0;
    for (int64_t v = 1; v < V; v++)
        if (last[v] > mx) mx = last[v];
    for (int64_t v = 0; v < V; v++) z += exp((double)last[v] - mx);
    int64_t prev_best = -1;
    double prev_p = 2.0;
    for (int r = 0; r < k && r < V; r++) {
        int64_t best = -1;
        double bp = -1.0;
        for (int64_t v = 0; v < V; v++) {
            double p = exp((double)last[v] - mx) / z;
            /* strictly below the previous pick, or equal with a larger id (stable ties) */
            int eligible = p < prev_p || (p == prev_p && v > prev_best);
            if (eligible && p > bp) {
                bp = p;
                best = v;
            }
        }
        char piece[256];
        st = ag_token_decode(model, tokens[n - 1], (int32_t)best, piece, sizeof piece, NULL);
        if (st != AG_OK) {
            fail("ag_token_decode", st);
            goto done;
        }
        printf("%2d. \"%s\"  p=%.4f  (id %lld)\n", r + 1, piece, bp, (long long)best);
        prev_best = best;
        prev_p = bp;
    }
    rc = 0;

done:
    ag_trace_free(trace); /* a trace borrows its model: free it first */
    ag_model_free(model);
    free(tokens);
    return rc;
}
