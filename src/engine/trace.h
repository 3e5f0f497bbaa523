/* The trace: one prompt's forward cache (B = 1), shared by every method. */
#ifndef AGI_TRACE_H
#define AGI_TRACE_H

#include "engine/acts.h"

struct ag_trace {
    const ag_model *model;
    agi_acts acts; /* B = 1, T = n_tokens, every pattern kept, logits at every position */
};

/* Validate a token sequence for `model` (at least one token, length within seq_len, ids in
 * range). `what` and `count` name the caller's array and length arguments in the messages
 * ("tokens"/"n_tokens", "prompt"/"n_prompt"); `purpose` explains why 0 tokens is refused. */
ag_status agi_check_tokens(const ag_model *m, const int32_t *tokens, size_t n, const char *func, const char *what,
                           const char *count, const char *purpose);

#endif
