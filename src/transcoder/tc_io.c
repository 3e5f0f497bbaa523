/* Transcoder files: safetensors (the JSON header parsed with cJSON), the circuit-tracer
 * directory layout, config.yaml and labels.json. See attrgraph.h (TRANSCODERS) for the layout.
 *
 * safetensors: u64 little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data; offsets are relative to the first byte after the header. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "core/json.h"

#include "core/core.h"
#include "model/model.h"
#include "transcoder/transcoder.h"

/* ---- half precision ------------------------------------------------------------------------ */

float agi_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF, u;
    if (e == 0) {
        if (m == 0) u = sign;
        else { /* subnormal: normalise */
            int sh = 0;
            while (!(m & 0x400)) m <<= 1, sh++;
            m &= 0x3FF;
            u = sign | ((uint32_t)(127 - 15 + 1 - sh) << 23) | (m << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7F800000u | (m << 13);
    } else {
        u = sign | ((e + 127 - 15) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float agi_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t agi_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

uint16_t agi_f32_to_f16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t e = (int32_t)((u >> 23) & 0xFF) - 127 + 15;
    uint32_t m = u & 0x7FFFFFu;
    if (((u >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00u | (m ? 0x200u : 0u));
    if (e >= 31) return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int sh = 14 - e;
        uint32_t half = 1u << (sh - 1), rest = m & ((1u << sh) - 1), q = m >> sh;
        if (rest > half || (rest == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((uint32_t)e << 10) | (m >> 13), rest = m & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

/* ---- reading ----------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int id, size;
} DTYPES[] = {{"F32", AGI_ST_F32, 4}, {"F16", AGI_ST_F16, 2}, {"BF16", AGI_ST_BF16, 2},
              {"F64", AGI_ST_F64, 8}, {"I64", AGI_ST_I64, 8}, {"I32", AGI_ST_I32, 4}};
/* safetensors dtypes that exist but are not converted */
static const char *const OTHER_DTYPES[] = {"BOOL", "U8", "I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
                                           "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

static int dtype_size(int id) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].id == id) return DTYPES[i].size;
    return 0;
}

int64_t agi_st_numel(const agi_st_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

void agi_st_free(agi_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->path);
    agi_blob_release(&f->blob);
    memset(f, 0, sizeof *f);
}

static char *dup_str(const char *s, const char *func) {
    size_t n = strlen(s);
    char *d = agi_malloc(n + 1, func);
    if (d) memcpy(d, s, n + 1);
    return d;
}

ag_status agi_st_parse(agi_st_file *f, const char *path, const uint8_t *data, size_t size, const char *func) {
    memset(f, 0, sizeof *f);
    f->path = dup_str(path, func);
    if (!f->path) return AG_ERR_OUT_OF_MEMORY;
    if (size < 8) return agi_error(AG_ERR_FORMAT, func, "%s: the file is %zu bytes, too short for the 8-byte header length", path, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (hlen > size - 8)
        return agi_error(AG_ERR_FORMAT, func, "%s: header length %llu runs past the end of the file (%zu bytes): truncated header",
                         path, (unsigned long long)hlen, size);
    if (hlen < 2) return agi_error(AG_ERR_FORMAT, func, "%s: header length %llu is too short for a JSON object", path, (unsigned long long)hlen);
    const char *js = (const char *)data + 8;
    const char *end = NULL;
    cJSON *root = agi_json_parse(js, (size_t)hlen, &end);
    if (!root) {
        size_t at = end && end >= js ? (size_t)(end - js) : 0;
        return agi_error(AG_ERR_FORMAT, func, "%s: the header is not valid JSON (error near byte %zu of %llu)", path, at,
                         (unsigned long long)hlen);
    }
    ag_status st = AG_OK;
    if (!cJSON_IsObject(root)) {
        st = agi_error(AG_ERR_FORMAT, func, "%s: the header is not a JSON object", path);
        goto out;
    }
    size_t data_len = size - 8 - (size_t)hlen;
    const uint8_t *base = data + 8 + hlen;
    int n = cJSON_GetArraySize(root);
    f->t = agi_calloc((size_t)(n ? n : 1), sizeof(agi_st_tensor), func);
    if (!f->t) {
        st = AG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                st = agi_error(AG_ERR_FORMAT, func, "%s: __metadata__ is not a JSON object", path);
                goto out;
            }
            int nm = cJSON_GetArraySize(it);
            f->meta_keys = agi_calloc((size_t)(nm ? nm : 1), sizeof(char *), func);
            f->meta_vals = agi_calloc((size_t)(nm ? nm : 1), sizeof(char *), func);
            if (!f->meta_keys || !f->meta_vals) {
                st = AG_ERR_OUT_OF_MEMORY;
                goto out;
            }
            for (cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    st = agi_error(AG_ERR_FORMAT, func, "%s: __metadata__ value of '%s' is not a string", path, m->string ? m->string : "");
                    goto out;
                }
                f->meta_keys[f->n_meta] = dup_str(m->string ? m->string : "", func);
                f->meta_vals[f->n_meta] = dup_str(m->valuestring, func);
                if (!f->meta_keys[f->n_meta] || !f->meta_vals[f->n_meta]) {
                    f->n_meta++;
                    st = AG_ERR_OUT_OF_MEMORY;
                    goto out;
                }
                f->n_meta++;
            }
            continue;
        }
        if (!cJSON_IsObject(it)) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': entry is not a JSON object", path, name);
            goto out;
        }
        agi_st_tensor *t = &f->t[f->n];
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'dtype' is missing or not a string", path, name);
            goto out;
        }
        for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
            if (strcmp(dt->valuestring, DTYPES[i].name) == 0) t->dtype = DTYPES[i].id;
        if (!t->dtype) {
            for (size_t i = 0; i < sizeof OTHER_DTYPES / sizeof OTHER_DTYPES[0]; i++)
                if (strcmp(dt->valuestring, OTHER_DTYPES[i]) == 0) {
                    st = agi_error(AG_ERR_UNSUPPORTED, func, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16)", path, name,
                                   dt->valuestring);
                    goto out;
                }
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': unknown dtype '%s'", path, name, dt->valuestring);
            goto out;
        }
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > 4) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'shape' is missing, not an array or has more than 4 dimensions", path, name);
            goto out;
        }
        int64_t numel = 1;
        for (cJSON *d = sh->child; d; d = d->next) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1099511627776.0 || d->valuedouble != floor(d->valuedouble)) {
                st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'shape' holds a dimension that is not a non-negative integer", path, name);
                goto out;
            }
            t->shape[t->ndim++] = (int64_t)d->valuedouble;
            numel *= (int64_t)d->valuedouble;
            if (numel > ((int64_t)1 << 40)) {
                st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'shape' is too large", path, name);
                goto out;
            }
        }
        if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !cJSON_IsNumber(of->child) || !cJSON_IsNumber(of->child->next) ||
            of->child->valuedouble < 0 || of->child->next->valuedouble < 0) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'data_offsets' is not [begin, end]", path, name);
            goto out;
        }
        double b = of->child->valuedouble, e = of->child->next->valuedouble;
        if (b > e || e > (double)data_len) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': data_offsets [%.0f, %.0f] run past the end of the data (%zu bytes)", path,
                           name, b, e, data_len);
            goto out;
        }
        size_t nbytes = (size_t)(e - b);
        if ((uint64_t)nbytes != (uint64_t)numel * (uint64_t)dtype_size(t->dtype)) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': data_offsets span %zu bytes but shape and dtype %s need %llu", path, name,
                           nbytes, dt->valuestring, (unsigned long long)numel * (unsigned long long)dtype_size(t->dtype));
            goto out;
        }
        t->name = dup_str(name, func);
        if (!t->name) {
            st = AG_ERR_OUT_OF_MEMORY;
            goto out;
        }
        t->data = base + (size_t)b;
        t->nbytes = nbytes;
        f->n++;
    }
out:
    cJSON_Delete(root);
    return st;
}

ag_status agi_st_read(agi_st_file *f, const char *path, const char *func) {
    memset(f, 0, sizeof *f);
    agi_blob b;
    ag_status st = agi_blob_map(&b, path, func);
    if (st != AG_OK) return st;
    st = agi_st_parse(f, path, b.data, b.size, func);
    f->blob = b;
    if (st != AG_OK) agi_st_free(f);
    return st;
}

const agi_st_tensor *agi_st_find(const agi_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *agi_st_meta(const agi_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

void agi_st_to_f32(const agi_st_tensor *t, float *dst) {
    int64_t n = agi_st_numel(t);
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case AGI_ST_F32: {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case AGI_ST_F16: dst[i] = agi_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case AGI_ST_BF16: dst[i] = agi_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); break;
        case AGI_ST_F64:
        case AGI_ST_I64: {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = (u << 8) | p[8 * i + k];
            if (t->dtype == AGI_ST_I64) dst[i] = (float)(int64_t)u;
            else {
                double d;
                memcpy(&d, &u, 8);
                dst[i] = (float)d;
            }
            break;
        }
        case AGI_ST_I32: {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            dst[i] = (float)(int32_t)u;
            break;
        }
        default: dst[i] = 0.0f;
        }
    }
}

/* ---- writing ----------------------------------------------------------------------------------- */

static void put_le32(uint8_t *b, uint32_t v) {
    for (int k = 0; k < 4; k++) b[k] = (uint8_t)(v >> (8 * k));
}

ag_status agi_st_write(const char *path, const agi_st_out *t, int n, const char *const *meta_kv, int n_meta,
                       const char *func) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory");
    ag_status st = AG_OK;
    uint64_t off = 0;
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta_kv[2 * i], meta_kv[2 * i + 1])) m = NULL;
        if (!m) st = AG_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < n && st == AG_OK; i++) {
        cJSON *o = cJSON_AddObjectToObject(root, t[i].name);
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        double shp[4], offs[2] = {(double)off, (double)(off + (uint64_t)numel * 4)};
        for (int d = 0; d < t[i].ndim; d++) shp[d] = (double)t[i].shape[d];
        cJSON *sa = t[i].ndim ? cJSON_CreateDoubleArray(shp, t[i].ndim) : cJSON_CreateArray();
        if (!o || !cJSON_AddStringToObject(o, "dtype", "F32") || !sa || !cJSON_AddItemToObject(o, "shape", sa) ||
            !cJSON_AddItemToObject(o, "data_offsets", cJSON_CreateDoubleArray(offs, 2)))
            st = AG_ERR_OUT_OF_MEMORY;
        off += (uint64_t)numel * 4;
    }
    char *js = st == AG_OK ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!js) return agi_error(AG_ERR_OUT_OF_MEMORY, func, "out of memory writing the header of %s", path);
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8;
    size_t plen = strlen(path);
    char *tmp = agi_malloc(plen + 5, func);
    if (!tmp) {
        free(js);
        return AG_ERR_OUT_OF_MEMORY;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = agi_error(AG_ERR_IO, func, "%s: cannot open for writing: %s", tmp, strerror(errno));
        free(js);
        free(tmp);
        return st;
    }
    uint8_t h8[8];
    for (int k = 0; k < 8; k++) h8[k] = (uint8_t)((uint64_t)padded >> (8 * k));
    fwrite(h8, 1, 8, fp);
    fwrite(js, 1, hl, fp);
    for (size_t k = hl; k < padded; k++) fputc(' ', fp);
    free(js);
    uint8_t buf[4096];
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        size_t k = 0;
        for (int64_t q = 0; q < numel; q++) {
            uint32_t u;
            memcpy(&u, &t[i].data[q], 4);
            put_le32(buf + k, u);
            k += 4;
            if (k == sizeof buf) {
                fwrite(buf, 1, k, fp);
                k = 0;
            }
        }
        if (k) fwrite(buf, 1, k, fp);
    }
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    if (bad) st = agi_error(AG_ERR_IO, func, "%s: write failed", tmp);
    else if (rename(tmp, path) != 0) st = agi_error(AG_ERR_IO, func, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (st != AG_OK) remove(tmp);
    free(tmp);
    return st;
}

/* ---- the directory layout ------------------------------------------------------------------------ */

static const char *act_name(int a) { return a == AG_ACTIVATION_JUMPRELU ? "jumprelu" : a == AG_ACTIVATION_TOPK ? "topk" : "relu"; }
static int act_parse(const char *s) {
    if (!s) return 0;
    if (strcmp(s, "relu") == 0) return AG_ACTIVATION_RELU;
    if (strcmp(s, "jumprelu") == 0 || strcmp(s, "jump_relu") == 0) return AG_ACTIVATION_JUMPRELU;
    if (strcmp(s, "topk") == 0 || strcmp(s, "top_k") == 0) return AG_ACTIVATION_TOPK;
    return -1;
}
static int read_point_parse(const char *s) {
    if (!s) return 0;
    if (strcmp(s, "mlp_in") == 0 || strstr(s, "mlp.hook_in") || strstr(s, "ln2.hook_normalized") || strstr(s, "hook_mlp_in"))
        return AG_READ_MLP_IN;
    if (strcmp(s, "resid_mid") == 0 || strstr(s, "hook_resid_mid")) return AG_READ_RESID_MID;
    return -1;
}

static char *path_join(const char *dir, const char *name, const char *func) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = agi_malloc(a + b + 2, func);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

/* Read a whole small text file (config.yaml, labels.json); NULL when absent. */
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap) break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (b) b[n] = '\0';
    if (len) *len = n;
    return b;
}

/* A "key: value" line of a flat YAML file; the value copied (quotes stripped) into buf. */
static int yaml_get(const char *text, const char *key, char *buf, size_t cap) {
    size_t kl = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > kl && strncmp(line, key, kl) == 0 && line[kl] == ':') {
            const char *v = line + kl + 1, *e = line + len;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\t')) e--;
            if (e > v && (*v == '"' || *v == '\'') && e[-1] == *v) v++, e--;
            size_t n = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return 1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* A model fingerprint as written by ag_transcoder_save: exactly 16 hex digits. */
static int fp_parse(const char *s, uint64_t *out) {
    uint64_t v = 0;
    int n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0 || n >= 16) return 0;
        v = v << 4 | (uint64_t)d;
    }
    if (n != 16) return 0;
    *out = v;
    return 1;
}

/* Copy tensor `name` of file f into dst after checking its shape. */
static ag_status take(const agi_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst, int required,
                      int *found, const char *func) {
    const agi_st_tensor *t = agi_st_find(f, name);
    if (found) *found = t != NULL;
    if (!t) return required ? agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s' is missing", f->path, name) : AG_OK;
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char want[96] = "", got[96] = "";
        size_t a = 0, b = 0;
        for (int d = 0; d < ndim; d++) a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", d ? ", " : "", (long long)shape[d]);
        for (int d = 0; d < t->ndim; d++) b += (size_t)snprintf(got + b, sizeof got - b, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        return agi_error(AG_ERR_FORMAT, func, "%s: tensor '%s': field 'shape' is [%s], expected [%s]", f->path, name, got, want);
    }
    agi_st_to_f32(t, dst);
    return AG_OK;
}

static ag_status labels_parse(ag_transcoder *tc, char *text, const char *path, const char *func);

ag_status ag_transcoder_load_options_init(ag_transcoder_load_options *opts, size_t struct_size) {
    static const char *const fn = "ag_transcoder_load_options_init";
    if (!opts) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts is NULL");
    if (struct_size < sizeof(size_t)) return agi_error(AG_ERR_VERSION, fn, "struct_size = %zu is too small", struct_size);
    memset(opts, 0, struct_size);
    opts->struct_size = struct_size;
    return AG_OK;
}

ag_status ag_transcoder_load(ag_transcoder **out, const char *path, const ag_model *model,
                             const ag_transcoder_load_options *opts) {
    static const char *const fn = "ag_transcoder_load";
    if (!out) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "out is NULL");
    *out = NULL;
    if (!path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "path is NULL");
    ag_transcoder_load_options o;
    ag_transcoder_load_options_init(&o, sizeof o);
    ag_status st = agi_options_copy(&o, sizeof o, opts, fn, "opts");
    if (st != AG_OK) return st;
    if (o.read_point != 0 && o.read_point != AG_READ_MLP_IN && o.read_point != AG_READ_RESID_MID)
        return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "opts->read_point = %d is not an AG_READ_* value", (int)o.read_point);
    struct stat sb;
    if (stat(path, &sb) != 0) return agi_error(AG_ERR_IO, fn, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s: not a directory (a transcoder set is a directory of .safetensors files)", path);

    /* which layout, how many layers */
    char name[64];
    int clt = 0, L = 0;
    for (;; L++) {
        snprintf(name, sizeof name, "layer_%d.safetensors", L);
        char *p = path_join(path, name, fn);
        if (!p) return AG_ERR_OUT_OF_MEMORY;
        int ex = file_exists(p);
        free(p);
        if (!ex) break;
    }
    if (L == 0) {
        clt = 1;
        for (;; L++) {
            snprintf(name, sizeof name, "W_enc_%d.safetensors", L);
            char *p = path_join(path, name, fn);
            if (!p) return AG_ERR_OUT_OF_MEMORY;
            int ex = file_exists(p);
            free(p);
            if (!ex) break;
        }
    }
    if (L == 0)
        return agi_error(AG_ERR_NOT_FOUND, fn, "%s: no layer_0.safetensors (per-layer set) or W_enc_0.safetensors (cross-layer set)", path);
    if (model && model->cfg.n_layers != L)
        return agi_error(AG_ERR_FORMAT, fn, "%s: %d layer files (%s) but the model %s has %d layers", path, L,
                         clt ? "W_enc_*.safetensors" : "layer_*.safetensors", model->name ? model->name : "", model->cfg.n_layers);

    /* config.yaml (optional) */
    char *cfgp = path_join(path, "config.yaml", fn);
    if (!cfgp) return AG_ERR_OUT_OF_MEMORY;
    char *yaml = read_text(cfgp, NULL);
    free(cfgp);

    ag_transcoder *tc = NULL;
    agi_st_file enc, dec;
    memset(&enc, 0, sizeof enc);
    memset(&dec, 0, sizeof dec);
    int F = 0, D = 0, act = 0, rp = 0, k = 0, has_th = 0, has_skip = 0, has_file_fp = 0;
    uint64_t file_fp = 0;
    for (int l = 0; l < L && st == AG_OK; l++) {
        snprintf(name, sizeof name, clt ? "W_enc_%d.safetensors" : "layer_%d.safetensors", l);
        char *p = path_join(path, name, fn);
        if (!p) {
            st = AG_ERR_OUT_OF_MEMORY;
            break;
        }
        st = agi_st_read(&enc, p, fn);
        free(p);
        if (st != AG_OK) break;
        if (clt) {
            snprintf(name, sizeof name, "W_dec_%d.safetensors", l);
            p = path_join(path, name, fn);
            if (!p) {
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            if (!file_exists(p)) st = agi_error(AG_ERR_FORMAT, fn, "%s: missing (every W_enc_%d.safetensors needs its W_dec_%d.safetensors)", p, l, l);
            else st = agi_st_read(&dec, p, fn);
            free(p);
            if (st != AG_OK) break;
        }
        char tn[64];
        snprintf(tn, sizeof tn, clt ? "W_enc_%d" : "W_enc", l);
        const agi_st_tensor *we = agi_st_find(&enc, tn);
        if (!we) {
            st = agi_error(AG_ERR_FORMAT, fn, "%s: tensor '%s' is missing", enc.path, tn);
            break;
        }
        if (we->ndim != 2 || we->shape[0] < 1 || we->shape[1] < 1 || we->shape[0] > (1 << 26) || we->shape[1] > (1 << 20)) {
            st = agi_error(AG_ERR_FORMAT, fn, "%s: tensor '%s': field 'shape' must be [d_tc, d_model]", enc.path, tn);
            break;
        }
        if (l == 0) {
            F = (int)we->shape[0];
            D = (int)we->shape[1];
            if (model && D != model->cfg.dim) {
                st = agi_error(AG_ERR_FORMAT, fn, "%s: tensor '%s': field 'shape' is [%d, %d] but the model's width (dim) is %d", enc.path, tn, F,
                               D, model->cfg.dim);
                break;
            }
            /* settings: metadata, then config.yaml, then what the tensors imply */
            char buf[128];
            const char *a = agi_st_meta(&enc, "attrgraph.activation");
            if (!a && yaml && yaml_get(yaml, "activation", buf, sizeof buf)) a = buf;
            act = act_parse(a);
            if (act < 0) {
                st = agi_error(AG_ERR_UNSUPPORTED, fn, "%s: activation '%s' is not relu, jumprelu or topk", path, a);
                break;
            }
            const char *ks = agi_st_meta(&enc, "attrgraph.k");
            if (!ks && yaml && yaml_get(yaml, "k", buf, sizeof buf)) ks = buf;
            if (ks) k = atoi(ks);
            const agi_st_tensor *kt = agi_st_find(&enc, "k");
            if (kt && agi_st_numel(kt) == 1) {
                float kv;
                agi_st_to_f32(kt, &kv);
                k = (int)kv;
                if (!act) act = AG_ACTIVATION_TOPK;
            }
            snprintf(tn, sizeof tn, clt ? "threshold_%d" : "activation_function.threshold", l);
            has_th = agi_st_find(&enc, tn) != NULL;
            if (!has_th && !clt && agi_st_find(&enc, "threshold")) has_th = 1;
            if (!act) act = has_th ? AG_ACTIVATION_JUMPRELU : AG_ACTIVATION_RELU;
            if (act == AG_ACTIVATION_TOPK && (k < 1 || k > F)) {
                st = agi_error(AG_ERR_FORMAT, fn, "%s: TopK needs k in [1, %d] (field 'k'), got %d", path, F, k);
                break;
            }
            if (act == AG_ACTIVATION_JUMPRELU && !has_th) {
                st = agi_error(AG_ERR_FORMAT, fn, "%s: tensor '%s' is missing (JumpReLU needs a threshold)", enc.path, tn);
                break;
            }
            snprintf(tn, sizeof tn, clt ? "W_skip_%d" : "W_skip", l);
            has_skip = agi_st_find(&enc, tn) != NULL;
            rp = o.read_point;
            if (!rp) rp = read_point_parse(agi_st_meta(&enc, "attrgraph.read_point"));
            if (!rp && yaml && yaml_get(yaml, "feature_input_hook", buf, sizeof buf)) rp = read_point_parse(buf);
            if (rp < 0) rp = 0;
            if (!rp) rp = clt ? AG_READ_RESID_MID : AG_READ_MLP_IN;
            st = agi_tc_alloc(&tc, clt ? AG_TRANSCODER_CROSS_LAYER : AG_TRANSCODER_PER_LAYER, act, rp, L, D, F, k, has_th, has_skip, fn);
            if (st != AG_OK) break;
            const char *mn = agi_st_meta(&enc, "attrgraph.model");
            if (mn) tc->model_name = dup_str(mn, fn);
            /* the model the set was made for (files written by attrgraph since the fingerprint
             * was saved; circuit-tracer's have none): metadata, then config.yaml */
            const char *fps = agi_st_meta(&enc, AGI_TC_FP_KEY);
            const char *fsrc = enc.path, *fkey = AGI_TC_FP_KEY;
            if (!fps && yaml && yaml_get(yaml, AGI_TC_FP_YAML_KEY, buf, sizeof buf)) fps = buf, fsrc = "config.yaml", fkey = AGI_TC_FP_YAML_KEY;
            if (fps) {
                if (!fp_parse(fps, &file_fp)) {
                    st = agi_error(AG_ERR_FORMAT, fn, "%s: %s: field '%s' is '%s', not a model fingerprint (16 hex digits)", path, fsrc, fkey,
                                   fps);
                    break;
                }
                has_file_fp = 1;
            }
            if (has_file_fp && model) {
                uint64_t mfp = agi_model_fingerprint(model);
                if (mfp != file_fp) {
                    st = agi_error(AG_ERR_FORMAT, fn,
                                   "%s: the set was made for another model: its files record the model '%s' (weights fingerprint "
                                   "%016llx) but it is loaded for the model '%s' (fingerprint %016llx), of the same shape but with "
                                   "other weights (to use it anyway, load it with a NULL model, which checks shapes only)",
                                   path, mn ? mn : "", (unsigned long long)file_fp, model->name ? model->name : "",
                                   (unsigned long long)mfp);
                    break;
                }
            }
        } else if (has_file_fp) { /* every layer file of the set records the same model */
            const char *fps = agi_st_meta(&enc, AGI_TC_FP_KEY);
            uint64_t v = 0;
            if (fps && (!fp_parse(fps, &v) || v != file_fp)) {
                st = agi_error(AG_ERR_FORMAT, fn, "%s: field '%s' is '%s' but the set's first layer file records %016llx: files of different sets",
                               enc.path, AGI_TC_FP_KEY, fps, (unsigned long long)file_fp);
                break;
            }
        }
        agi_tc_layer *ly = &tc->layers[l];
        int64_t s_fd[2] = {F, D}, s_f[1] = {F}, s_d[1] = {D}, s_dd[2] = {D, D}, s_fld[3] = {F, L - l, D};
        snprintf(tn, sizeof tn, clt ? "W_enc_%d" : "W_enc", l);
        st = take(&enc, tn, 2, s_fd, ly->W_enc, 1, NULL, fn);
        if (st == AG_OK) {
            snprintf(tn, sizeof tn, clt ? "b_enc_%d" : "b_enc", l);
            st = take(&enc, tn, 1, s_f, ly->b_enc, 1, NULL, fn);
        }
        if (st == AG_OK) {
            snprintf(tn, sizeof tn, clt ? "b_dec_%d" : "b_dec", l);
            st = take(&enc, tn, 1, s_d, ly->b_dec, 1, NULL, fn);
        }
        if (st == AG_OK && has_th) {
            snprintf(tn, sizeof tn, clt ? "threshold_%d" : "activation_function.threshold", l);
            if (!clt && !agi_st_find(&enc, tn)) snprintf(tn, sizeof tn, "threshold");
            st = take(&enc, tn, 1, s_f, ly->threshold, 1, NULL, fn);
        }
        if (st == AG_OK && has_skip) {
            snprintf(tn, sizeof tn, clt ? "W_skip_%d" : "W_skip", l);
            st = take(&enc, tn, 2, s_dd, ly->W_skip, 1, NULL, fn);
            if (st == AG_OK && clt) { /* stored for x · W_skip: transpose to y = W_skip x */
                for (int i = 0; i < D; i++)
                    for (int j = i + 1; j < D; j++) {
                        float t = ly->W_skip[(size_t)i * D + j];
                        ly->W_skip[(size_t)i * D + j] = ly->W_skip[(size_t)j * D + i];
                        ly->W_skip[(size_t)j * D + i] = t;
                    }
            }
        }
        if (st == AG_OK) {
            if (clt) {
                snprintf(tn, sizeof tn, "W_dec_%d", l);
                st = take(&dec, tn, 3, s_fld, ly->W_dec, 1, NULL, fn);
            } else {
                st = take(&enc, "W_dec", 2, s_fd, ly->W_dec, 1, NULL, fn);
            }
        }
        agi_st_free(&enc);
        agi_st_free(&dec);
    }
    agi_st_free(&enc);
    agi_st_free(&dec);
    free(yaml);
    if (st == AG_OK) {
        char *lp = path_join(path, "labels.json", fn);
        if (!lp) st = AG_ERR_OUT_OF_MEMORY;
        else {
            char *text = read_text(lp, NULL);
            if (text) st = labels_parse(tc, text, lp, fn); /* takes text */
            free(lp);
        }
    }
    if (st == AG_OK && model) st = agi_tc_record_model(tc, model, fn); /* loaded for `model` */
    if (st == AG_OK && !model && has_file_fp) { /* not checked, but saved again */
        tc->has_file_fp = 1;
        tc->file_fp = file_fp;
    }
    if (st != AG_OK) {
        ag_transcoder_free(tc);
        return st;
    }
    agi_clear_error();
    *out = tc;
    return AG_OK;
}

ag_status ag_transcoder_save(const ag_transcoder *tc, const char *path) {
    static const char *const fn = "ag_transcoder_save";
    if (!tc || !path) return agi_error(AG_ERR_INVALID_ARGUMENT, fn, "%s is NULL", !tc ? "tc" : "path");
    if (mkdir(path, 0777) != 0 && errno != EEXIST) return agi_error(AG_ERR_IO, fn, "%s: cannot create the directory: %s", path, strerror(errno));
    int clt = tc->kind == AG_TRANSCODER_CROSS_LAYER, L = tc->L, D = tc->D, F = tc->F;
    char kbuf[32], lbuf[32], nbuf[32], fpbuf[32] = "";
    snprintf(kbuf, sizeof kbuf, "%d", tc->k);
    /* the model the set was made for: recorded (loaded with a model, or trained), else as read */
    int has_fp = tc->has_model || tc->has_file_fp;
    if (has_fp) snprintf(fpbuf, sizeof fpbuf, "%016llx", (unsigned long long)(tc->has_model ? tc->model_fp : tc->file_fp));
    snprintf(nbuf, sizeof nbuf, "%d", L);
    const char *rp = tc->read_point == AG_READ_RESID_MID ? "resid_mid" : "mlp_in";
    ag_status st = AG_OK;
    float *skipT = clt && tc->has_skip ? agi_malloc(sizeof(float) * (size_t)D * D, fn) : NULL;
    if (clt && tc->has_skip && !skipT) return AG_ERR_OUT_OF_MEMORY;
    for (int l = 0; l < L && st == AG_OK; l++) {
        const agi_tc_layer *ly = &tc->layers[l];
        snprintf(lbuf, sizeof lbuf, "%d", l);
        const char *meta[] = {"format", "pt", "attrgraph.kind", clt ? "cross_layer_transcoder" : "transcoder_set",
                              "attrgraph.activation", act_name(tc->activation), "attrgraph.k", kbuf,
                              "attrgraph.read_point", rp, "attrgraph.layer", lbuf, "attrgraph.n_layers", nbuf,
                              "attrgraph.model", tc->model_name ? tc->model_name : "", AGI_TC_FP_KEY, fpbuf};
        int n_meta = has_fp ? 9 : 8;
        agi_st_out t[8];
        int n = 0;
        char names[6][48];
        snprintf(names[0], 48, clt ? "W_enc_%d" : "W_enc", l);
        snprintf(names[1], 48, clt ? "b_enc_%d" : "b_enc", l);
        snprintf(names[2], 48, clt ? "b_dec_%d" : "b_dec", l);
        snprintf(names[3], 48, clt ? "threshold_%d" : "activation_function.threshold", l);
        snprintf(names[4], 48, clt ? "W_skip_%d" : "W_skip", l);
        snprintf(names[5], 48, clt ? "W_dec_%d" : "W_dec", l);
        t[n++] = (agi_st_out){names[0], ly->W_enc, 2, {F, D, 0, 0}};
        if (!clt) t[n++] = (agi_st_out){names[5], ly->W_dec, 2, {F, D, 0, 0}};
        t[n++] = (agi_st_out){names[1], ly->b_enc, 1, {F, 0, 0, 0}};
        t[n++] = (agi_st_out){names[2], ly->b_dec, 1, {D, 0, 0, 0}};
        if (ly->threshold) t[n++] = (agi_st_out){names[3], ly->threshold, 1, {F, 0, 0, 0}};
        if (ly->W_skip) {
            const float *ws = ly->W_skip;
            if (clt) {
                for (int i = 0; i < D; i++)
                    for (int j = 0; j < D; j++) skipT[(size_t)j * D + i] = ly->W_skip[(size_t)i * D + j];
                ws = skipT;
            }
            t[n++] = (agi_st_out){names[4], ws, 2, {D, D, 0, 0}};
        }
        char fname[64];
        snprintf(fname, sizeof fname, clt ? "W_enc_%d.safetensors" : "layer_%d.safetensors", l);
        char *p = path_join(path, fname, fn);
        if (!p) {
            st = AG_ERR_OUT_OF_MEMORY;
            break;
        }
        st = agi_st_write(p, t, n, meta, n_meta, fn);
        free(p);
        if (st == AG_OK && clt) {
            agi_st_out td = {names[5], ly->W_dec, 3, {F, L - l, D, 0}};
            snprintf(fname, sizeof fname, "W_dec_%d.safetensors", l);
            p = path_join(path, fname, fn);
            if (!p) {
                st = AG_ERR_OUT_OF_MEMORY;
                break;
            }
            st = agi_st_write(p, &td, 1, meta, n_meta, fn);
            free(p);
        }
    }
    free(skipT);
    if (st != AG_OK) return st;
    /* config.yaml */
    char *p = path_join(path, "config.yaml", fn);
    if (!p) return AG_ERR_OUT_OF_MEMORY;
    FILE *f = fopen(p, "w");
    if (!f) {
        st = agi_error(AG_ERR_IO, fn, "%s: cannot open for writing: %s", p, strerror(errno));
        free(p);
        return st;
    }
    fprintf(f, "# written by attrgraph %s\nmodel_kind: %s\nmodel_name: \"%s\"\n", AG_VERSION_STRING,
            clt ? "cross_layer_transcoder" : "transcoder_set", tc->model_name ? tc->model_name : "");
    fprintf(f, "feature_input_hook: %s\nfeature_output_hook: %s\n",
            tc->read_point == AG_READ_RESID_MID ? "hook_resid_mid" : "mlp.hook_in", clt ? "hook_mlp_out" : "mlp.hook_out");
    fprintf(f, "activation: %s\n", act_name(tc->activation));
    if (tc->activation == AG_ACTIVATION_TOPK) fprintf(f, "k: %d\n", tc->k);
    fprintf(f, "n_layers: %d\nd_model: %d\nn_features: %d\n", L, D, F);
    if (has_fp) fprintf(f, "%s: \"%s\"\n", AGI_TC_FP_YAML_KEY, fpbuf);
    if (fclose(f) != 0) st = agi_error(AG_ERR_IO, fn, "%s: write failed", p);
    free(p);
    if (st == AG_OK && tc->labels.json) {
        p = path_join(path, "labels.json", fn);
        if (!p) return AG_ERR_OUT_OF_MEMORY;
        f = fopen(p, "w");
        if (!f) st = agi_error(AG_ERR_IO, fn, "%s: cannot open for writing: %s", p, strerror(errno));
        else {
            fputs(tc->labels.json, f);
            if (fclose(f) != 0) st = agi_error(AG_ERR_IO, fn, "%s: write failed", p);
        }
        free(p);
    }
    if (st == AG_OK) agi_clear_error();
    return st;
}

/* ---- labels.json ----------------------------------------------------------------------------------
 * {"format":"attrgraph-transcoder-labels","version":1,"n_layers":L,"n_features":F,
 *  "features":[{"layer":l,"index":i,"label":"...","density":x,"top_tokens":[...],
 *               "examples":[{"text":"...","activation":x},...]},...]}
 * Features without an entry get an empty label. */
static ag_status labels_parse(ag_transcoder *tc, char *text, const char *path, const char *func) {
    cJSON *root = agi_json_parse(text, strlen(text), NULL);
    ag_status st = AG_OK;
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        free(text);
        return agi_error(AG_ERR_FORMAT, func, "%s: not a JSON object", path);
    }
    cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "features");
    size_t n = (size_t)tc->L * (size_t)tc->F;
    tc->labels.text = agi_calloc(n, sizeof(char *), func);
    tc->labels.density = agi_calloc(n, sizeof(double), func);
    if (!tc->labels.text || !tc->labels.density) st = AG_ERR_OUT_OF_MEMORY;
    if (st == AG_OK && !cJSON_IsArray(feats)) st = agi_error(AG_ERR_FORMAT, func, "%s: field 'features' is not an array", path);
    for (cJSON *it = st == AG_OK ? feats->child : NULL; it && st == AG_OK; it = it->next) {
        cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "layer"), *i = cJSON_GetObjectItemCaseSensitive(it, "index");
        cJSON *lab = cJSON_GetObjectItemCaseSensitive(it, "label"), *den = cJSON_GetObjectItemCaseSensitive(it, "density");
        if (!cJSON_IsNumber(l) || !cJSON_IsNumber(i) || l->valueint < 0 || l->valueint >= tc->L || i->valueint < 0 || i->valueint >= tc->F) {
            st = agi_error(AG_ERR_FORMAT, func, "%s: a feature entry has a missing or out-of-range 'layer' or 'index'", path);
            break;
        }
        size_t q = (size_t)l->valueint * tc->F + (size_t)i->valueint;
        if (cJSON_IsString(lab) && !tc->labels.text[q]) {
            tc->labels.text[q] = dup_str(lab->valuestring, func);
            if (!tc->labels.text[q]) st = AG_ERR_OUT_OF_MEMORY;
        }
        if (cJSON_IsNumber(den)) tc->labels.density[q] = den->valuedouble;
    }
    for (size_t q = 0; q < n && st == AG_OK; q++)
        if (!tc->labels.text[q] && !(tc->labels.text[q] = dup_str("", func))) st = AG_ERR_OUT_OF_MEMORY;
    cJSON_Delete(root);
    if (st != AG_OK) {
        if (tc->labels.text)
            for (size_t q = 0; q < n; q++) free(tc->labels.text[q]);
        free(tc->labels.text);
        free(tc->labels.density);
        tc->labels.text = NULL;
        tc->labels.density = NULL;
        free(text);
        return st;
    }
    tc->labels.json = text;
    return AG_OK;
}
