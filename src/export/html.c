/* The self-contained HTML viewer: template (generated viewer_template.h) + escaped title +
 * escaped graph JSON. See html.h. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/json.h"

#include "core/core.h"
#include "export/html.h"
#include "viewer_template.h"

#define AGI_HTML_TITLE_MAX 160 /* bytes of prompt/slug used for a default title */

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Parse and check the schema essentials the viewer needs. On success *doc is the parsed tree. */
static ag_status check_graph_json(const char *json, size_t len, cJSON **doc, const char *func) {
    *doc = NULL;
    if (memchr(json, '\0', len))
        return agi_error(AG_ERR_FORMAT, func, "graph JSON contains a NUL byte at offset %zu",
                         (size_t)((const char *)memchr(json, '\0', len) - json));
    const char *end = NULL;
    cJSON *root = agi_json_parse(json, len, &end);
    if (!root) {
        size_t at = (end && end >= json && end <= json + len) ? (size_t)(end - json) : 0;
        return agi_error(AG_ERR_FORMAT, func, "graph JSON is not valid JSON (near byte %zu of %zu)", at, len);
    }
    for (size_t i = (size_t)(end - json); i < len; i++)
        if (!is_json_space((unsigned char)json[i])) {
            cJSON_Delete(root);
            return agi_error(AG_ERR_FORMAT, func, "graph JSON has trailing characters at byte %zu", i);
        }
    const char *why = NULL;
    if (!cJSON_IsObject(root)) why = "is not a JSON object";
    else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "nodes"))) why = "has no \"nodes\" array";
    else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "links"))) why = "has no \"links\" array";
    if (why) {
        cJSON_Delete(root);
        return agi_error(AG_ERR_FORMAT, func, "graph JSON %s (the viewer schema is {metadata, qParams, nodes, links})", why);
    }
    *doc = root;
    return AG_OK;
}

/* HTML-escape UTF-8 text for an element's content; control characters become spaces. At most
 * `max` input bytes are used, cut back to a UTF-8 character boundary. */
static void write_html_text(FILE *f, const char *s, size_t max) {
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* not inside a character */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(c < 0x20 || c == 0x7F ? ' ' : c, f);
        }
    }
}

/* The JSON with '<' '>' '&' U+2028 U+2029 as \u escapes (all of them occur only in strings). */
static void write_json_escaped(FILE *f, const char *json, size_t len) {
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)json[i];
        const char *rep = NULL;
        size_t skip = 1;
        if (c == '<') rep = "\\u003c";
        else if (c == '>') rep = "\\u003e";
        else if (c == '&') rep = "\\u0026";
        else if (c == 0xE2 && i + 2 < len && (unsigned char)json[i + 1] == 0x80 &&
                 ((unsigned char)json[i + 2] == 0xA8 || (unsigned char)json[i + 2] == 0xA9)) {
            rep = (unsigned char)json[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
            skip = 3;
        }
        if (!rep) continue;
        if (i > run) fwrite(json + run, 1, i - run, f);
        fputs(rep, f);
        i += skip - 1;
        run = i + 1;
    }
    if (len > run) fwrite(json + run, 1, len - run, f);
}

/* Write the page for an already checked JSON (doc = its parse, for the default title). */
static ag_status write_page(FILE *f, const char *graph_json, size_t len, const char *title, const cJSON *doc,
                            const char *func) {
    fwrite(agi_viewer_part0, 1, AGI_VIEWER_PART0_LEN, f);
    if (title) {
        write_html_text(f, title, (size_t)-1);
    } else {
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(meta, "prompt");
        if (!cJSON_IsString(p) || !p->valuestring[0]) p = cJSON_GetObjectItemCaseSensitive(meta, "slug");
        fputs("attrgraph", f);
        if (cJSON_IsString(p) && p->valuestring[0]) {
            fputs(": ", f);
            write_html_text(f, p->valuestring, AGI_HTML_TITLE_MAX);
        }
    }
    fwrite(agi_viewer_part1, 1, AGI_VIEWER_PART1_LEN, f);
    write_json_escaped(f, graph_json, len);
    fwrite(agi_viewer_part2, 1, AGI_VIEWER_PART2_LEN, f);
    if (fflush(f) != 0 || ferror(f)) return agi_error(AG_ERR_IO, func, "writing the HTML failed");
    return AG_OK;
}

static ag_status check_args(const char *graph_json, size_t len, const char *func) {
    if (!graph_json) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "graph_json is NULL");
    if (len == 0) return agi_error(AG_ERR_FORMAT, func, "graph JSON is empty");
    return AG_OK;
}

ag_status agi_html_write(FILE *f, const char *graph_json, size_t len, const char *title, const char *func) {
    if (!f) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "the output stream is NULL");
    ag_status st = check_args(graph_json, len, func);
    cJSON *doc = NULL;
    if (st == AG_OK) st = check_graph_json(graph_json, len, &doc, func);
    if (st == AG_OK) st = write_page(f, graph_json, len, title, doc, func);
    cJSON_Delete(doc);
    return st;
}

ag_status agi_html_write_path(const char *path, const char *graph_json, size_t len, const char *title,
                              const char *func) {
    if (!path || !*path) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "path is NULL or empty");
    ag_status st = check_args(graph_json, len, func);
    cJSON *doc = NULL;
    if (st == AG_OK) st = check_graph_json(graph_json, len, &doc, func); /* before touching the file */
    if (st != AG_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        cJSON_Delete(doc);
        return agi_error(AG_ERR_IO, func, "%s: cannot open for writing", path);
    }
    st = write_page(f, graph_json, len, title, doc, func);
    cJSON_Delete(doc);
    if (fclose(f) != 0 && st == AG_OK) st = agi_error(AG_ERR_IO, func, "%s: writing failed", path);
    if (st != AG_OK) {
        remove(path);
        return st;
    }
    agi_clear_error();
    return AG_OK;
}

ag_status ag_viewer_write_html(const char *path, const char *graph_json, size_t len, const char *title) {
    return agi_html_write_path(path, graph_json, len, title, "ag_viewer_write_html");
}

ag_status ag_graph_write_html(const ag_graph *graph, const char *path, const ag_export_options *opts) {
    const char *func = "ag_graph_write_html";
    if (!graph) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "graph is NULL");
    if (!path || !*path) return agi_error(AG_ERR_INVALID_ARGUMENT, func, "path is NULL or empty");
    char *json = NULL;
    size_t len = 0;
    ag_status st = ag_graph_json(graph, opts, &json, &len);
    if (st != AG_OK) return st;
    st = agi_html_write_path(path, json, len, NULL, func);
    ag_free(json);
    return st;
}
