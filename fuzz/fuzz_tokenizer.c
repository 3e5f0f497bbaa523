/* libFuzzer target: the llama2.c tokenizer reader (agi_tokenizer_from_bin) and, when the
 * bytes load, encode/decode over every token and over text taken from the input.
 * Input layout: 2 bytes little-endian select n_vocab = 1 + (v % 1024); then the tokenizer
 * file. The last min(96, size/4) bytes of the file part are also used as the text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attrgraph.h"
#include "io/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int32_t n_vocab = 1 + (int32_t)((data[0] | data[1] << 8) % 1024);
    data += 2;
    size -= 2;
    agi_tokenizer *t = (agi_tokenizer *)(uintptr_t)1;
    ag_status st = agi_tokenizer_from_bin(&t, data, size, n_vocab, "fuzz.tok", "fuzz");
    if (st != AG_OK) {
        if (t != NULL || !strstr(ag_last_error(), "fuzz.tok")) abort();
        return 0;
    }
    if (agi_tokenizer_n_vocab(t) != n_vocab) abort();
    int32_t bos = agi_tokenizer_bos(t);
    /* Decode every token after "nothing" and after BOS. */
    for (int32_t i = 0; i < n_vocab; i++) {
        char scratch[2];
        size_t len;
        const char *p = agi_tokenizer_decode(t, -1, i, scratch, &len);
        const char *q = agi_tokenizer_decode(t, bos, i, scratch, &len);
        if (!p || !q) abort();
        float score;
        if (!agi_tokenizer_piece(t, i, &score)) abort();
    }
    char scratch[2];
    size_t len;
    if (agi_tokenizer_decode(t, -1, n_vocab, scratch, &len) || agi_tokenizer_decode(t, -1, -1, scratch, &len)) abort();

    /* Encode a fixed text and a text from the input. */
    size_t tl = size / 4 < 96 ? size / 4 : 96;
    char text[97];
    memcpy(text, data + size - tl, tl);
    text[tl] = '\0';
    const char *texts[2] = {"Once upon a time \xF0\x9F\x98\x80 caf\xc3\xa9 \xff", text};
    for (int k = 0; k < 2; k++) {
        size_t cap = strlen(texts[k]) + 2, n = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        if (!ids) abort();
        st = agi_tokenizer_encode(t, texts[k], bos >= 0, ids, cap, &n, "fuzz");
        if (st != AG_OK || n > cap) abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= n_vocab) abort();
        size_t need = 0;
        if (n > 0 && agi_tokenizer_encode(t, texts[k], bos >= 0, NULL, 0, &need, "fuzz") != AG_ERR_BUFFER_TOO_SMALL) abort();
        if (n > 0 && need != n) abort();
        free(ids);
    }
    agi_tokenizer_free(t);
    return 0;
}
