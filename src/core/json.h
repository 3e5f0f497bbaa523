/* The library's one JSON parse entry point (cJSON underneath).
 *
 * cJSON's parser writes a process-wide error record (global_error) on every call, whatever the
 * options; two threads parsing at once race on it (DaveGamble/cJSON#314, #713). The library
 * parses JSON in a few places (safetensors headers, labels.json, the viewer's graph check)
 * that callers may reach from several threads, so every such parse goes through here and is
 * serialised by one mutex. The error position comes back through *end (never through
 * cJSON_GetErrorPtr, which this library does not call). An application that also calls cJSON
 * itself from other threads is outside what this lock can cover. */
#ifndef AGI_JSON_H
#define AGI_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Parse len bytes (no NUL needed; trailing bytes after the value are left to the caller, who
 * sees where the value ended in *end). Returns the tree (cJSON_Delete it) or NULL; on failure
 * *end points near the error. */
cJSON *agi_json_parse(const char *text, size_t len, const char **end);

#endif
