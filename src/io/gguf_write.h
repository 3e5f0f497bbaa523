/* Writers: GGUF v3 (F32 tensors, metadata, the llama2.c/sentencepiece vocabulary), the
 * llama2.c legacy checkpoint and the llama2.c tokenizer .bin. The GGUF layout matches what
 * src/io/gguf.c reads (see the comment at its top): "GGUF", u32 version 3, u64 tensor_count,
 * u64 kv_count, the key/values, the tensor infos (dims innermost first, type 0 = F32, offset
 * relative to the data section), zero padding to general.alignment (32), then the data, each
 * tensor starting at a multiple of the alignment. */
#ifndef AGI_GGUF_WRITE_H
#define AGI_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "attrgraph.h"
#include "model/model.h"

typedef struct agi_gguf_w agi_gguf_w;

ag_status agi_gguf_w_new(agi_gguf_w **out, const char *func);
void agi_gguf_w_free(agi_gguf_w *w);

/* Metadata (appended in call order). Errors are sticky: the first failure is reported by
 * every later call and by the final write. */
ag_status agi_gguf_w_u32(agi_gguf_w *w, const char *key, uint32_t v);
ag_status agi_gguf_w_i32(agi_gguf_w *w, const char *key, int32_t v);
ag_status agi_gguf_w_u64(agi_gguf_w *w, const char *key, uint64_t v);
ag_status agi_gguf_w_f32(agi_gguf_w *w, const char *key, float v);
ag_status agi_gguf_w_str(agi_gguf_w *w, const char *key, const char *v);
ag_status agi_gguf_w_str_array(agi_gguf_w *w, const char *key, size_t n, const char *const *strs, const size_t *lens);
ag_status agi_gguf_w_f32_array(agi_gguf_w *w, const char *key, size_t n, const float *v);
ag_status agi_gguf_w_i32_array(agi_gguf_w *w, const char *key, size_t n, const int32_t *v);

/* An F32 tensor; ne[] innermost first (a row-major [rows][cols] matrix is ne = {cols, rows}).
 * `data` is borrowed until the write. */
ag_status agi_gguf_w_tensor(agi_gguf_w *w, const char *name, int n_dims, const uint64_t *ne, const float *data);

/* Serialise into a malloc'ed buffer (*out, *size) or a file. */
ag_status agi_gguf_w_to_memory(agi_gguf_w *w, uint8_t **out, size_t *size);
ag_status agi_gguf_w_to_file(agi_gguf_w *w, const char *path);

/* A whole model as GGUF: configuration, weights and (when attached) the tokenizer.
 * extra_kv: n_extra pairs of (key, string value) added as string metadata (may be NULL). */
ag_status agi_model_to_gguf(const ag_model *m, const char *const *extra_kv, size_t n_extra, agi_gguf_w **out,
                            const char *func);

/* A model in llama2.c's legacy .bin layout (the classifier after the weights when it is not
 * shared; RoPE tables computed as llama2.c's export does). */
ag_status agi_model_write_llama2c(const ag_model *m, const char *path, const char *func);

/* The attached tokenizer in llama2.c's tokenizer .bin layout. */
ag_status agi_tokenizer_write_bin(const ag_model *m, const char *path, const char *func);

#endif
