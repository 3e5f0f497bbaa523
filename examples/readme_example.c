/* The usage example of README.md, verbatim from the #include on (.ci/run checks that the two
 * agree, builds this file against the installed library and runs it). */
#include <attrgraph.h>
#include <stdio.h>

int main(int argc, char **argv) { /* usage: readme_example MODEL.bin TOKENIZER.bin */
    if (argc != 3) return 2;
    ag_model_options mo;
    AG_MODEL_OPTIONS_INIT(mo);
    mo.tokenizer_path = argv[2];
    ag_model *model = NULL;
    ag_trace *trace = NULL;
    int32_t tok[64], ndim, best = 0, ok = 0;
    size_t n = 0;
    const float *logits;
    int64_t shape[3];
    /* every call returns AG_OK (0) or a negative ag_status */
    if (ag_model_load(&model, argv[1], &mo) || ag_tokenize(model, "Once upon a", 1, tok, 64, &n) ||
        ag_trace_create(&trace, model, tok, n, NULL) ||
        ag_trace_tensor(trace, AG_TENSOR_LOGITS, 0, &logits, shape, &ndim)) {
        fprintf(stderr, "error: %s\n", ag_last_error()); /* names the function and the cause */
    } else {
        const float *last = logits + (shape[0] - 1) * shape[1]; /* logits [T][V]: last row */
        for (int32_t v = 1; v < shape[1]; v++) if (last[v] > last[best]) best = v;
        char piece[64];
        ok = ag_token_decode(model, tok[n - 1], best, piece, sizeof piece, NULL) == AG_OK;
        if (ok) printf("next token after \"Once upon a\": \"%s\" (id %d)\n", piece, best);
    }
    ag_trace_free(trace); /* the trace before the model it borrows; NULL is a no-op */
    ag_model_free(model);
    return ok ? 0 : 1;
}
