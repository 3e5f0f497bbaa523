/* A growable text buffer for the writers (JSON, DOT): printf-style appends, one error flag
 * checked at the end, so a failed allocation never leaves half-written output behind. */
#ifndef AGI_STRBUF_H
#define AGI_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct agi_strbuf {
    char *s;
    size_t n, cap;
    int failed;
} agi_strbuf;

void agi_sb_putc(agi_strbuf *b, char c);
void agi_sb_puts(agi_strbuf *b, const char *s);
void agi_sb_printf(agi_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A JSON string literal with escapes (invalid UTF-8 bytes become U+FFFD). */
void agi_sb_json_str(agi_strbuf *b, const char *s);
/* A JSON number: %.9g for float-exact values; non-finite -> null. */
void agi_sb_json_num(agi_strbuf *b, double v);
/* A double with 17 significant digits (round-trips); non-finite -> null. */
void agi_sb_json_num17(agi_strbuf *b, double v);

#endif
