/* The self-contained graph viewer: one HTML file (inline CSS and JS, no network) with a graph
 * JSON in the viewer schema (DESIGN.md section 4) embedded. The template lives in
 * src/export/viewer/ and is compiled into the library by cmake/embed.cmake. */
#ifndef AGI_EXPORT_HTML_H
#define AGI_EXPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

#include "attrgraph.h"

/* Write the viewer with `graph_json` (len bytes, UTF-8) embedded to `f`.
 * The JSON must parse and be an object with "nodes" and "links" arrays (AG_ERR_FORMAT
 * otherwise, message naming the problem). It is embedded byte for byte except that '<', '>',
 * '&', U+2028 and U+2029 become \u003c, \u003e, \u0026, \u2028, \u2029 (in valid JSON these
 * occur only inside strings, so the JSON means the same and can never close its <script>).
 * `title` (UTF-8, may be NULL) goes into <title>, HTML-escaped; NULL means
 * "attrgraph: " + metadata.prompt (or metadata.slug). Deterministic: the same arguments give
 * the same bytes. Errors are recorded under `func`. Returns AG_OK, AG_ERR_INVALID_ARGUMENT,
 * AG_ERR_FORMAT, AG_ERR_OUT_OF_MEMORY or AG_ERR_IO (a write failed). */
ag_status agi_html_write(FILE *f, const char *graph_json, size_t len, const char *title, const char *func);

/* The same into a file at `path`: the JSON is checked first (a bad one leaves the file alone);
 * then it is created or truncated, and removed again if writing fails. */
ag_status agi_html_write_path(const char *path, const char *graph_json, size_t len, const char *title,
                              const char *func);

#endif
