/* A file's bytes: mapped read-only, borrowed from the caller, or copied. Readers validate
 * every offset against `size` before touching the bytes. */
#ifndef AGI_BLOB_H
#define AGI_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include "attrgraph.h"

typedef struct agi_blob {
    const uint8_t *data;
    size_t size;
    int kind; /* 0 none, 1 mmap, 2 borrowed, 3 malloc copy */
} agi_blob;

ag_status agi_blob_map(agi_blob *b, const char *path, const char *func);
ag_status agi_blob_memory(agi_blob *b, const void *data, size_t size, int copy, const char *name,
                          const char *func);
void agi_blob_release(agi_blob *b);

/* A bounds-checked little-endian reader over a blob. Reads past the end set `bad` and
 * return zeros, so a parser checks `bad` once per header section. */
typedef struct agi_reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
    int bad;
} agi_reader;

uint32_t agi_read_u32(agi_reader *r);
uint64_t agi_read_u64(agi_reader *r);
int32_t agi_read_i32(agi_reader *r);
float agi_read_f32(agi_reader *r);
/* Borrow n bytes at the current position (NULL and bad=1 if they are not all there). */
const uint8_t *agi_read_bytes(agi_reader *r, size_t n);

#endif
