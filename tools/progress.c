/* Progress bar / progress lines on stderr and Ctrl-C cancellation for the CLI (progress.h). */
#include "progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) || defined(__APPLE__)
#include <sys/ioctl.h>
#endif

static volatile sig_atomic_t g_interrupted = 0;

static void on_sigint(int sig) {
    if (g_interrupted) { /* second Ctrl-C: the default action (terminate) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_interrupted = 1;
}

int cli_progress_interrupted(void) { return g_interrupted != 0; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_format_time(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (s < 9.95) snprintf(buf, cap, "%.1f s", s);
    else if (t < 60) snprintf(buf, cap, "%ld s", t);
    else if (t < 3600) snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

static int term_width(FILE *out) {
    const char *c = getenv("COLUMNS");
    if (c && atoi(c) >= 20) return atoi(c);
#if defined(TIOCGWINSZ)
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
#else
    (void)out;
#endif
    return 80;
}

void cli_progress_begin_on(cli_progress *p, const char *task, FILE *out, cli_progress_mode mode) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->mode = out ? mode : CLI_PROGRESS_QUIET;
    p->task = task ? task : "attrgraph";
    p->last_step = -1;
    p->last_frac = -1;
    p->width = p->mode == CLI_PROGRESS_BAR ? term_width(out) : 80;
    p->t_begin = now_s();
    g_interrupted = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, NULL, &p->old_int) == 0 && p->old_int.sa_handler != SIG_IGN &&
        sigaction(SIGINT, &sa, NULL) == 0)
        p->installed = 1;
}

void cli_progress_begin(cli_progress *p, const char *task, int quiet) {
    cli_progress_mode mode = CLI_PROGRESS_LINES;
    const char *term = getenv("TERM");
    if (quiet) mode = CLI_PROGRESS_QUIET;
    else if (isatty(fileno(stderr)) && !(term && strcmp(term, "dumb") == 0)) mode = CLI_PROGRESS_BAR;
    cli_progress_begin_on(p, task, stderr, mode);
    p->delay = mode == CLI_PROGRESS_BAR ? 0.3 : 1.0;
}

static void eta_text(const cli_progress *p, double frac, double now, char *buf, size_t cap) {
    double el = now - p->phase_t0;
    char a[24], b[24];
    cli_progress_format_time(el, a, sizeof a);
    if (frac >= 1.0) snprintf(buf, cap, "%s", a);
    else if (frac >= 0.01 && el >= 0.5) {
        cli_progress_format_time(el * (1.0 - frac) / frac, b, sizeof b);
        snprintf(buf, cap, "%s, about %s left", a, b);
    } else snprintf(buf, cap, "%s", a);
}

static void draw_bar(cli_progress *p, double frac, double now) {
    char eta[64];
    eta_text(p, frac, now, eta, sizeof eta);
    int pct = (int)floor(frac * 100.0 + 1e-9);
    int fixed = (int)strlen(p->phase) + (int)strlen(eta) + 12; /* " [" "] 100% " */
    int bar = p->width - 1 - fixed;
    if (bar > 40) bar = 40;
    fprintf(p->out, "\r%s ", p->phase);
    if (bar >= 5) {
        int full = (int)floor(frac * bar + 1e-9);
        fputc('[', p->out);
        for (int i = 0; i < bar; i++) fputc(i < full ? '#' : '-', p->out);
        fputc(']', p->out);
    }
    fprintf(p->out, " %3d%% %s\033[K", pct, eta);
    fflush(p->out);
    p->drawn = 1;
    p->last_draw = now;
}

static void line(cli_progress *p, double frac, double now) {
    char eta[64];
    eta_text(p, frac, now, eta, sizeof eta);
    fprintf(p->out, "attrgraph %s: %s %3d%% (%s)\n", p->task, p->phase, (int)floor(frac * 100.0 + 1e-9), eta);
    fflush(p->out);
}

/* Close the current phase's output before another begins or at the end. */
static void close_phase(cli_progress *p, double now) {
    if (!p->phase[0]) return;
    if (p->mode == CLI_PROGRESS_BAR && p->drawn) {
        if (p->last_frac >= 0) draw_bar(p, p->last_frac, now);
        fputc('\n', p->out);
        fflush(p->out);
        p->drawn = 0;
    }
}

int cli_progress_update(cli_progress *p, const char *phase, double done, double total) {
    if (!p) return g_interrupted != 0;
    double frac = total > 0 ? done / total : done;
    if (!(frac >= 0)) frac = 0; /* NaN, negative */
    if (frac > 1) frac = 1;
    if (!phase || !*phase) phase = p->task;
    if (p->mode == CLI_PROGRESS_QUIET) return g_interrupted != 0;
    double now = now_s();
    if (now - p->t_begin < p->delay) {
        /* too early to show anything; remember the phase so its time is right */
        if (strncmp(phase, p->phase, sizeof p->phase - 1) != 0) {
            snprintf(p->phase, sizeof p->phase, "%s", phase);
            p->phase_t0 = now;
        }
        p->last_frac = frac;
        return g_interrupted != 0;
    }
    if (strncmp(phase, p->phase, sizeof p->phase - 1) != 0) {
        close_phase(p, now);
        snprintf(p->phase, sizeof p->phase, "%s", phase);
        p->phase_t0 = now;
        p->last_step = -1;
        p->last_frac = -1;
        p->last_draw = 0;
    }
    if (p->mode == CLI_PROGRESS_BAR) {
        if (now - p->last_draw >= 0.1 || (frac >= 1.0 && p->last_frac < 1.0) || !p->drawn) draw_bar(p, frac, now);
    } else {
        int step = (int)floor(frac * 10.0 + 1e-9);
        if (step > p->last_step) {
            line(p, frac, now);
            p->last_step = step;
        }
    }
    p->last_frac = frac;
    return g_interrupted != 0;
}

int cli_progress_cb(const char *phase, double fraction, void *user_data) {
    return cli_progress_update((cli_progress *)user_data, phase, fraction, 0);
}

int cli_progress_fraction_cb(double fraction, void *user_data) {
    return cli_progress_update((cli_progress *)user_data, NULL, fraction, 0);
}

void cli_progress_end(cli_progress *p, ag_status st) {
    if (!p) return;
    if (p->mode != CLI_PROGRESS_QUIET) {
        close_phase(p, now_s());
        if (st == AG_ERR_CANCELLED) {
            fprintf(p->out, "attrgraph %s: cancelled\n", p->task);
            fflush(p->out);
        }
    }
    if (p->installed) sigaction(SIGINT, &p->old_int, NULL);
    p->installed = 0;
    p->phase[0] = '\0';
}
