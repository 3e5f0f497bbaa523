/* attrgraph: the command-line tool (public API only). Machine-readable output is JSON on
 * stdout; progress and messages go to stderr; bad input exits non-zero with one line. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_command *const COMMANDS[] = {
    &cli_cmd_info, &cli_cmd_tokenize, &cli_cmd_generate, &cli_cmd_logits,
    &cli_cmd_intervene, &cli_cmd_validate, &cli_cmd_show,
    &cli_cmd_graph, &cli_cmd_attribute,
    &cli_cmd_train, &cli_cmd_world,
    &cli_cmd_transcoder,
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
    fprintf(f, "attrgraph %s: attribution graphs for transformer language models\n\n"
               "usage: attrgraph COMMAND [options]   (attrgraph COMMAND --help for details)\n\ncommands:\n",
            ag_version_string());
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fprintf(f, "\ncommon options:\n"
               "  -m, --model PATH       llama2.c .bin or .gguf model (default: the built-in model)\n"
               "  -z, --tokenizer PATH   llama2.c tokenizer .bin (GGUF files carry their own)\n"
               "  -p, --prompt TEXT      prompt, encoded with BOS prepended\n"
               "  -t, --tokens IDS       token ids used as given, e.g. 1,403,407\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "attrgraph: no command given (try attrgraph --help)\n");
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("attrgraph %s\n", ag_version_string());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], COMMANDS[i]->name) != 0) continue;
        for (int k = 2; k < argc; k++)
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                fputs(COMMANDS[i]->usage, stdout);
                return 0;
            }
        cli_args a = {argc, argv, calloc((size_t)argc, 1)};
        if (!a.used) return 1;
        a.used[0] = a.used[1] = 1;
        int rc = COMMANDS[i]->run(&a);
        free(a.used);
        return rc;
    }
    fprintf(stderr, "attrgraph: unknown command '%s' (try attrgraph --help)\n", argv[1]);
    return 1;
}
