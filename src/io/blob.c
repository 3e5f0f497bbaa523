/* File mapping and the bounds-checked reader used by every file format. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "io/blob.h"

ag_status agi_blob_map(agi_blob *b, const char *path, const char *func) {
    memset(b, 0, sizeof *b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return agi_error(AG_ERR_IO, func, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return agi_error(AG_ERR_IO, func, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return agi_error(AG_ERR_IO, func, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return agi_error(AG_ERR_FORMAT, func, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return agi_error(AG_ERR_IO, func, "%s: cannot map: %s", path, strerror(e));
    b->data = p;
    b->size = (size_t)st.st_size;
    b->kind = 1;
    return AG_OK;
}

ag_status agi_blob_memory(agi_blob *b, const void *data, size_t size, int copy, const char *name,
                          const char *func) {
    memset(b, 0, sizeof *b);
    if (!data || size == 0) return agi_error(AG_ERR_FORMAT, func, "%s: model bytes are empty", name);
    if (copy) {
        void *p = agi_malloc(size, func);
        if (!p) return AG_ERR_OUT_OF_MEMORY;
        memcpy(p, data, size);
        b->data = p;
        b->kind = 3;
    } else {
        b->data = data;
        b->kind = 2;
    }
    b->size = size;
    return AG_OK;
}

void agi_blob_release(agi_blob *b) {
    if (b->kind == 1) munmap((void *)b->data, b->size);
    else if (b->kind == 3) free((void *)b->data);
    memset(b, 0, sizeof *b);
}

const uint8_t *agi_read_bytes(agi_reader *r, size_t n) {
    if (r->bad || r->pos > r->size || n > r->size - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += n;
    return p;
}

uint32_t agi_read_u32(agi_reader *r) {
    const uint8_t *p = agi_read_bytes(r, 4);
    if (!p) return 0;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t agi_read_u64(agi_reader *r) {
    uint64_t lo = agi_read_u32(r);
    uint64_t hi = agi_read_u32(r);
    return lo | hi << 32;
}

int32_t agi_read_i32(agi_reader *r) {
    uint32_t u = agi_read_u32(r);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

float agi_read_f32(agi_reader *r) {
    uint32_t u = agi_read_u32(r);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
