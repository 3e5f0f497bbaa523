/* Serialised cJSON parsing: see json.h for why. */
#include "core/json.h"

#include <pthread.h>

static pthread_mutex_t json_lock = PTHREAD_MUTEX_INITIALIZER;

cJSON *agi_json_parse(const char *text, size_t len, const char **end) {
    const char *stop = NULL;
    pthread_mutex_lock(&json_lock);
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
    pthread_mutex_unlock(&json_lock);
    if (end) *end = stop;
    return root;
}
