/* Progress reporting for the attrgraph CLI (stderr; stdout stays machine-readable).
 *
 *  - stderr is a terminal: one line redrawn in place, "phase [#####-----]  45%  0:12 left",
 *    at most ~10 times a second;
 *  - stderr is not a terminal (CI logs, pipes): plain lines, one per 10% step of a phase and
 *    one when a phase ends, "attrgraph: rows 40% (elapsed 3.1 s, about 4.6 s left)";
 *  - quiet: nothing at all.
 * Ctrl-C (SIGINT) while a progress is active makes the next callback return nonzero, so the
 * library stops cleanly with AG_ERR_CANCELLED; a second Ctrl-C kills the process as usual.
 *
 * Use:
 *     cli_progress p;
 *     cli_progress_begin(&p, "graph", quiet);
 *     opts.progress = cli_progress_cb;   // int (*)(const char *phase, double done, void *)
 *     opts.user_data = &p;
 *     ag_status st = ag_graph_build(&g, trace, &opts);
 *     cli_progress_end(&p, st);          // finishes the line; "cancelled" on AG_ERR_CANCELLED
 *     if (st == AG_ERR_CANCELLED) return 130;
 * A callback with another signature calls cli_progress_update(&p, phase, done, total). */
#ifndef ATTRGRAPH_CLI_PROGRESS_H
#define ATTRGRAPH_CLI_PROGRESS_H

#include <signal.h>
#include <stdio.h>

#include "attrgraph.h"

typedef enum cli_progress_mode {
    CLI_PROGRESS_QUIET = 0,
    CLI_PROGRESS_LINES = 1, /* plain lines */
    CLI_PROGRESS_BAR = 2    /* a redrawn bar on a terminal */
} cli_progress_mode;

typedef struct cli_progress {
    FILE *out;
    cli_progress_mode mode;
    const char *task;     /* prefix of plain lines, e.g. "graph" */
    char phase[48];       /* current phase */
    double phase_t0;      /* monotonic seconds when the phase began */
    double last_draw;     /* monotonic seconds of the last bar redraw */
    double last_frac;
    int last_step;        /* last 10% step printed (plain lines) */
    int drawn;            /* a bar is on the current line */
    int width;            /* terminal columns */
    int installed;        /* our SIGINT handler is installed */
    double t_begin;       /* monotonic seconds at begin */
    double delay;         /* show nothing until this many seconds have passed (short jobs stay silent) */
    struct sigaction old_int;
} cli_progress;

/* Start reporting on stderr. quiet = 1: report nothing (SIGINT still cancels). The mode is
 * BAR when stderr is a terminal (and TERM is not "dumb"), LINES otherwise. Work that ends
 * within 0.3 s (bar) or 1 s (lines) prints nothing. */
void cli_progress_begin(cli_progress *p, const char *task, int quiet);
/* The same with an explicit stream and mode, and no initial delay (tests). */
void cli_progress_begin_on(cli_progress *p, const char *task, FILE *out, cli_progress_mode mode);

/* Report `done` of `total` (total <= 0: done is a fraction in [0, 1]) in `phase` (NULL: the
 * task). Returns nonzero once SIGINT was received (the caller should stop). */
int cli_progress_update(cli_progress *p, const char *phase, double done, double total);

/* The library callback shapes, `user_data` being a cli_progress:
 * ag_graph_options.progress (phase, fraction) and ag_attribute_options.progress (fraction). */
int cli_progress_cb(const char *phase, double fraction, void *user_data);
int cli_progress_fraction_cb(double fraction, void *user_data);

/* Finish: ends the bar line, prints "cancelled" for AG_ERR_CANCELLED, restores SIGINT. */
void cli_progress_end(cli_progress *p, ag_status st);

/* 1 when SIGINT arrived since the last cli_progress_begin. */
int cli_progress_interrupted(void);

/* "1:02:03", "4:05" or "7 s" for a duration; buf of at least 16 bytes. */
void cli_progress_format_time(double seconds, char *buf, size_t cap);

#endif
