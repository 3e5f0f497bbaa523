/*
 * check_html — the self-contained viewer file (src/export/html.c, template embedded from
 * src/export/viewer/): the graph JSON round-trips through the page, nothing in it can close
 * its <script> element, the title is escaped, the output is deterministic, bad input gives
 * clear errors and leaves files alone. (The page itself is tested in headless Chromium:
 * tests/browser/, label "browser".)
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "attrgraph.h"
#include "export/html.h"
#include "suite_run.h"

#define DATA_OPEN "<script id=\"ag-graph-data\" type=\"application/json\">"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* Write the page to memory; returns it NUL-terminated (free()). */
static char *page(const char *json, size_t len, const char *title, ag_status *st_out, size_t *out_len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    ck_assert_ptr_nonnull(f);
    ag_status st = agi_html_write(f, json, len, title, "test");
    fclose(f);
    if (st_out) *st_out = st;
    else ck_assert_msg(st == AG_OK, "agi_html_write = %d: %s", (int)st, ag_last_error());
    if (out_len) *out_len = n;
    return buf;
}

/* The text of the data block (between its <script> and the next </script>), malloc'ed. */
static char *data_block(const char *html) {
    const char *a = strstr(html, DATA_OPEN);
    ck_assert_ptr_nonnull(a);
    a += strlen(DATA_OPEN);
    const char *b = strstr(a, "</script>");
    ck_assert_ptr_nonnull(b);
    char *s = malloc((size_t)(b - a) + 1);
    memcpy(s, a, (size_t)(b - a));
    s[b - a] = '\0';
    return s;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

START_TEST(test_fixture_round_trips) {
    size_t len;
    char *json = slurp(AG_SOURCE_DIR "/tests/data/circuit_tracer_graph.json", &len);
    char *html = page(json, len, NULL, NULL, NULL);
    ck_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    ck_assert_ptr_null(strstr(html, "@AG_TITLE@"));    /* every marker filled */
    ck_assert_ptr_null(strstr(html, "@AG_GRAPH_JSON@"));
    ck_assert_ptr_null(strstr(html, "@AG_VIEWER_"));
    ck_assert_ptr_nonnull(strstr(html, "window.agViewer")); /* the viewer's code is inlined */
    ck_assert_ptr_nonnull(strstr(html, "Content-Security-Policy"));
    char *block = data_block(html);
    /* the fixture holds "</script>", "<!--", "&", U+2028: none survives raw */
    ck_assert_ptr_null(strchr(block, '<'));
    ck_assert_ptr_null(strchr(block, '>'));
    ck_assert_ptr_null(strchr(block, '&'));
    ck_assert_ptr_null(strstr(block, "\xE2\x80\xA8"));
    ck_assert_ptr_nonnull(strstr(block, "\\u003c/script\\u003e"));
    cJSON *a = cJSON_Parse(json), *b = cJSON_Parse(block);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(cJSON_Compare(a, b, 1), "the embedded JSON differs from the input");
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* the page has exactly the template's </script> tags: the data cannot add one */
    ck_assert_uint_eq(count(html, "</script>"), 2);
    free(block);
    free(html);
    free(json);
}
END_TEST

START_TEST(test_deterministic_and_byte_exact) {
    size_t len;
    char *json = slurp(AG_SOURCE_DIR "/tests/data/graph_small.json", &len);
    size_t n1, n2;
    char *h1 = page(json, len, "t", NULL, &n1);
    char *h2 = page(json, len, "t", NULL, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(h1, h2, n1) == 0);
    /* embedded byte for byte but for the escapes (this fixture has only "<s>") */
    char *block = data_block(h1);
    char *want = malloc(2 * len + 64), *w = want;
    for (const char *p = json; *p; p++) {
        if (*p == '<') w += sprintf(w, "\\u003c");
        else if (*p == '>') w += sprintf(w, "\\u003e");
        else *w++ = *p;
    }
    *w = '\0';
    ck_assert_ptr_null(strpbrk(json, "&"));
    ck_assert_ptr_nonnull(strstr(json, "<s>"));
    ck_assert_str_eq(block, want);
    free(want);
    free(block);
    free(h1);
    free(h2);
    free(json);
}
END_TEST

START_TEST(test_title) {
    const char *g = "{\"metadata\":{\"prompt\":\"Once <b>\\n\\\"x\\\" & 'y'\",\"slug\":\"s\"},\"nodes\":[],\"links\":[]}";
    char *h = page(g, strlen(g), NULL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "<title>attrgraph: Once &lt;b&gt; &quot;x&quot; &amp; &#39;y&#39;</title>"));
    free(h);
    h = page(g, strlen(g), "a<script>&", NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "<title>a&lt;script&gt;&amp;</title>"));
    free(h);
    const char *g2 = "{\"metadata\":{\"slug\":\"only-slug\"},\"nodes\":[],\"links\":[]}";
    h = page(g2, strlen(g2), NULL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "<title>attrgraph: only-slug</title>"));
    free(h);
    const char *g3 = "{\"nodes\":[],\"links\":[]}";
    h = page(g3, strlen(g3), NULL, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(h, "<title>attrgraph</title>"));
    free(h);
    /* a long prompt is cut at a character boundary (2-byte characters) */
    char big[1024];
    strcpy(big, "{\"metadata\":{\"prompt\":\"");
    for (int i = 0; i < 200; i++) strcat(big, "\xC3\xA9");
    strcat(big, "\"},\"nodes\":[],\"links\":[]}");
    h = page(big, strlen(big), NULL, NULL, NULL);
    const char *t = strstr(h, "<title>attrgraph: ");
    ck_assert_ptr_nonnull(t);
    t += strlen("<title>attrgraph: ");
    const char *e = strstr(t, "</title>");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq((size_t)(e - t), 160);
    free(h);
}
END_TEST

START_TEST(test_escapes_everything_dangerous) {
    const char *g = "{\"nodes\":[{\"node_id\":\"a\",\"clerp\":\"</SCRIPT><!-- <script> \xE2\x80\xA8 \xE2\x80\xA9 & >\"}],"
                    "\"links\":[],\"metadata\":{\"prompt\":\"\\u003c/script>\"}}";
    char *h = page(g, strlen(g), "x", NULL, NULL);
    char *block = data_block(h);
    ck_assert_ptr_null(strpbrk(block, "<>&"));
    ck_assert_ptr_null(strstr(block, "\xE2\x80"));
    ck_assert_ptr_nonnull(strstr(block, "\\u003c/SCRIPT\\u003e\\u003c!-- \\u003cscript\\u003e \\u2028 \\u2029 \\u0026 \\u003e"));
    cJSON *a = cJSON_Parse(g), *b = cJSON_Parse(block);
    ck_assert(cJSON_Compare(a, b, 1));
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(block);
    free(h);
}
END_TEST

START_TEST(test_bad_input) {
    ag_status st;
    char *h;
    struct { const char *json; const char *msg; } bad[] = {
        {"{\"nodes\":[],", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"nodes\":[]}", "no \"links\" array"},
        {"{\"links\":[]}", "no \"nodes\" array"},
        {"{\"nodes\":{},\"links\":[]}", "no \"nodes\" array"},
        {"{\"nodes\":[],\"links\":[]} x", "trailing characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h = page(bad[i].json, strlen(bad[i].json), NULL, &st, NULL);
        ck_assert_int_eq(st, AG_ERR_FORMAT);
        ck_assert_msg(strstr(ag_last_error(), bad[i].msg) != NULL, "%s -> %s", bad[i].json, ag_last_error());
        free(h);
    }
    const char nul[] = "{\"nodes\":[],\0\"links\":[]}";
    h = page(nul, sizeof nul - 1, NULL, &st, NULL);
    ck_assert_int_eq(st, AG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "NUL"));
    free(h);
    h = page("", 0, NULL, &st, NULL);
    ck_assert_int_eq(st, AG_ERR_FORMAT);
    free(h);
    h = page(NULL, 3, NULL, &st, NULL);
    ck_assert_int_eq(st, AG_ERR_INVALID_ARGUMENT);
    free(h);
    ck_assert_int_eq(agi_html_write(NULL, "{}", 2, NULL, "test"), AG_ERR_INVALID_ARGUMENT);
    /* trailing whitespace is fine */
    const char *ok = "{\"nodes\":[],\"links\":[]}\n\t ";
    h = page(ok, strlen(ok), NULL, &st, NULL);
    ck_assert_int_eq(st, AG_OK);
    free(h);
}
END_TEST

START_TEST(test_public_writer_files) {
    char path[512];
    snprintf(path, sizeof path, "%s/check_html_out.html", AG_BINARY_DIR);
    const char *g = "{\"nodes\":[],\"links\":[]}";
    ck_assert_int_eq(ag_viewer_write_html(path, g, strlen(g), "t"), AG_OK);
    ck_assert_str_eq(ag_last_error(), "");
    size_t n;
    char *h = slurp(path, &n);
    ck_assert_ptr_nonnull(strstr(h, "<title>t</title>"));
    free(h);
    /* a bad JSON leaves the existing file untouched */
    ck_assert_int_eq(ag_viewer_write_html(path, "{", 1, "t"), AG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "ag_viewer_write_html"));
    size_t n2;
    h = slurp(path, &n2);
    ck_assert_uint_eq(n, n2);
    free(h);
    remove(path);
    ck_assert_int_eq(ag_viewer_write_html(AG_BINARY_DIR "/no/such/dir/x.html", g, strlen(g), NULL), AG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ag_last_error(), "no/such/dir"));
    ck_assert_int_eq(ag_viewer_write_html(NULL, g, strlen(g), NULL), AG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(ag_viewer_write_html(path, NULL, 0, NULL), AG_ERR_INVALID_ARGUMENT);
    struct stat sb;
    ck_assert_int_ne(stat(path, &sb), 0);
}
END_TEST

static Suite *html_suite(void) {
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("viewer");
    tcase_add_test(tc, test_fixture_round_trips);
    tcase_add_test(tc, test_deterministic_and_byte_exact);
    tcase_add_test(tc, test_title);
    tcase_add_test(tc, test_escapes_everything_dangerous);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_public_writer_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int failed = ag_test_run_suite(html_suite(), CK_ENV);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
