/* The writers' text buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/strbuf.h"

static int grow(agi_strbuf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

void agi_sb_putc(agi_strbuf *b, char c) {
    if (grow(b, 1)) return;
    b->s[b->n++] = c;
    b->s[b->n] = '\0';
}

void agi_sb_puts(agi_strbuf *b, const char *s) {
    size_t n = strlen(s);
    if (grow(b, n)) return;
    memcpy(b->s + b->n, s, n + 1);
    b->n += n;
}

void agi_sb_printf(agi_strbuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        agi_sb_puts(b, small);
        return;
    }
    if (grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* Length of a valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static int utf8_len(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    int n = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && p[0] < 0xC2)) return 0;
    for (int k = 1; k < n; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return n;
}

void agi_sb_json_str(agi_strbuf *b, const char *s) {
    agi_sb_putc(b, '"');
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned char ch = *p;
        switch (ch) {
        case '"': agi_sb_puts(b, "\\\""); p++; continue;
        case '\\': agi_sb_puts(b, "\\\\"); p++; continue;
        case '\n': agi_sb_puts(b, "\\n"); p++; continue;
        case '\r': agi_sb_puts(b, "\\r"); p++; continue;
        case '\t': agi_sb_puts(b, "\\t"); p++; continue;
        case '\b': agi_sb_puts(b, "\\b"); p++; continue;
        case '\f': agi_sb_puts(b, "\\f"); p++; continue;
        default: break;
        }
        if (ch < 0x20) {
            agi_sb_printf(b, "\\u%04x", ch);
            p++;
            continue;
        }
        int n = utf8_len(p);
        if (n == 0) {
            agi_sb_puts(b, "\\ufffd");
            p++;
            continue;
        }
        for (int k = 0; k < n; k++) agi_sb_putc(b, (char)p[k]);
        p += n;
    }
    agi_sb_putc(b, '"');
}

void agi_sb_json_num(agi_strbuf *b, double v) {
    if (!isfinite(v)) agi_sb_puts(b, "null");
    else agi_sb_printf(b, "%.9g", v);
}

void agi_sb_json_num17(agi_strbuf *b, double v) {
    if (!isfinite(v)) agi_sb_puts(b, "null");
    else agi_sb_printf(b, "%.17g", v);
}
