/* Simulated annealing over shifts and swaps for the ROADEF/EURO 2012 machine-reassignment problem.
 *
 * Compiled on first use by walk.py (cc -O2 -shared) and called through ctypes. Every array is a
 * C-contiguous int64 numpy array owned by the caller; the state arrays (x, used, held, counts) are
 * the caller's copies and are updated in place. A move is made only when it keeps every rule
 * (capacity, transient capacity counting both machines of a move, conflict, spread, dependency);
 * its exact cost change (load, balance, process, service and machine move costs) decides by the
 * Metropolis rule. The cheapest assignment seen is written to best_x.
 *
 * Besides shifts and swaps the walk tries ejection chains: a process moves onto a machine it does
 * not fit yet while one process already there leaves for a third machine (its home half of the
 * time: going home frees the transient capacity it holds there), the pair kept only if the
 * machine then fits. This is how room is made on the few machines that can take a large process.
 */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <time.h>

typedef int64_t i64;

typedef struct {
    i64 R, M, P, S, L, N, B;
    const i64 *req, *cap, *safety, *transient, *load_w, *bal; /* bal: B rows of r1 r2 target w */
    const i64 *pmc, *mmc, *service, *spread_min, *location, *zone, *initial;
    const i64 *dep_start, *dep, *rdep_start, *rdep;
    i64 w_pmc, w_smc, w_mmc;
    i64 *x, *used, *held, *on_machine, *in_location, *in_zone, *spread, *moved, *hist;
    i64 hist_len, top, total;
    const double *lock; /* per process: steering charge for being away from home (or NULL) */
} W;

static _Thread_local uint64_t rng_state; /* one per thread: walks may run side by side */
static inline uint64_t next_rand(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double uniform(void) { return (double)(next_rand() >> 11) * (1.0 / 9007199254740992.0); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Load and balance cost of machine m if `sign` times process p's requirement were added. */
static i64 machine_cost(const W *w, i64 m, i64 p, i64 sign) {
    const i64 *u = w->used + m * w->R, *sc = w->safety + m * w->R, *c = w->cap + m * w->R;
    const i64 *rq = w->req + p * w->R;
    i64 cost = 0;
    for (i64 r = 0; r < w->R; r++) {
        i64 over = u[r] + sign * rq[r] - sc[r];
        if (over > 0) cost += over * w->load_w[r];
    }
    for (i64 b = 0; b < w->B; b++) {
        const i64 *row = w->bal + 4 * b;
        i64 f1 = c[row[0]] - u[row[0]] - sign * rq[row[0]];
        i64 f2 = c[row[1]] - u[row[1]] - sign * rq[row[1]];
        i64 v = row[2] * f1 - f2;
        if (v > 0) cost += row[3] * v;
    }
    return cost;
}

/* Conflict, spread and dependency rules for moving p from its machine to m. */
static int rules_ok(const W *w, i64 p, i64 m) {
    i64 s = w->service[p], src = w->x[p];
    if (w->on_machine[s * w->M + m] > 0) return 0;
    i64 l1 = w->location[src], l2 = w->location[m];
    if (l1 != l2 && w->spread_min[s] > 1) {
        i64 sp = w->spread[s] - (w->in_location[s * w->L + l1] == 1) +
                 (w->in_location[s * w->L + l2] == 0);
        if (sp < w->spread_min[s]) return 0;
    }
    i64 n1 = w->zone[src], n2 = w->zone[m];
    if (n1 != n2) {
        for (i64 k = w->dep_start[s]; k < w->dep_start[s + 1]; k++)
            if (w->in_zone[w->dep[k] * w->N + n2] == 0) return 0;
        if (w->in_zone[s * w->N + n1] == 1)
            for (i64 k = w->rdep_start[s]; k < w->rdep_start[s + 1]; k++)
                if (w->in_zone[w->rdep[k] * w->N + n1] > 0) return 0;
    }
    return 1;
}

/* Capacity and transient capacity of m with p added (p's home already holds p's transient). */
static int fits(const W *w, i64 p, i64 m) {
    const i64 *rq = w->req + p * w->R, *c = w->cap + m * w->R;
    const i64 *u = w->used + m * w->R, *h = w->held + m * w->R;
    int away = m != w->initial[p];
    for (i64 r = 0; r < w->R; r++) {
        if (u[r] + rq[r] > c[r]) return 0;
        if (w->transient[r] && away && h[r] + rq[r] > c[r]) return 0;
    }
    return 1;
}

static int machine_ok(const W *w, i64 m) {
    const i64 *c = w->cap + m * w->R, *u = w->used + m * w->R, *h = w->held + m * w->R;
    for (i64 r = 0; r < w->R; r++) {
        if (u[r] > c[r]) return 0;
        if (w->transient[r] && h[r] > c[r]) return 0;
    }
    return 1;
}

/* Largest moved count of one service if service s's count changed by step (-1, 0, 1). */
static i64 top_after(const W *w, i64 s, i64 step) {
    i64 c = w->moved[s];
    if (step > 0) return c + 1 > w->top ? c + 1 : w->top;
    if (step < 0 && c == w->top && w->hist[c] == 1) return w->top - 1;
    return w->top;
}

/* Exact cost change of moving p to m (no feasibility check). */
static i64 delta(const W *w, i64 p, i64 m) {
    i64 src = w->x[p], home = w->initial[p], s = w->service[p];
    i64 d = machine_cost(w, src, p, -1) - machine_cost(w, src, p, 0) + machine_cost(w, m, p, 1) -
            machine_cost(w, m, p, 0);
    i64 step = (i64)(m != home) - (i64)(src != home);
    d += w->w_pmc * w->pmc[p] * step;
    d += w->w_mmc * (w->mmc[home * w->M + m] - w->mmc[home * w->M + src]);
    d += w->w_smc * (top_after(w, s, step) - w->top);
    return d;
}

static void apply(W *w, i64 p, i64 m, i64 d) {
    i64 src = w->x[p], home = w->initial[p], s = w->service[p];
    const i64 *rq = w->req + p * w->R;
    for (i64 r = 0; r < w->R; r++) {
        w->used[src * w->R + r] -= rq[r];
        w->used[m * w->R + r] += rq[r];
        if (src != home) w->held[src * w->R + r] -= rq[r];
        if (m != home) w->held[m * w->R + r] += rq[r];
    }
    w->on_machine[s * w->M + src]--;
    w->on_machine[s * w->M + m]++;
    i64 l1 = w->location[src], l2 = w->location[m];
    if (l1 != l2) {
        if (--w->in_location[s * w->L + l1] == 0) w->spread[s]--;
        if (w->in_location[s * w->L + l2]++ == 0) w->spread[s]++;
    }
    w->in_zone[s * w->N + w->zone[src]]--;
    w->in_zone[s * w->N + w->zone[m]]++;
    i64 step = (i64)(m != home) - (i64)(src != home);
    if (step) {
        i64 t = top_after(w, s, step);
        w->hist[w->moved[s]]--;
        w->moved[s] += step;
        w->hist[w->moved[s]]++;
        w->top = t;
    }
    w->x[p] = m;
    w->total += d;
}

/* Steering charge of p's move to m: being away from home holds its transient capacity there. */
static inline double lock_charge(const W *w, i64 p, i64 m) {
    if (!w->lock) return 0.0;
    i64 home = w->initial[p];
    return w->lock[p] * (double)((m != home) - (w->x[p] != home));
}

/* Shift p to m through apply with its exact change: used by swaps and undo. */
static i64 shift(W *w, i64 p, i64 m) {
    i64 d = delta(w, p, m);
    apply(w, p, m, d);
    return d;
}

/* Undo a pair of shifts made in order p then q: q back to q_from, then p back to p_from. */
static void undo_pair(W *w, i64 p, i64 p_from, i64 q, i64 q_from) {
    shift(w, q, q_from);
    shift(w, p, p_from);
}

/* Leaving the best by a pair of shifts (p to p_to, then q to q_to) already made: write the
 * assignment before them to best_x, the pair undone around the copy. */
static void save_before_pair(W *w, i64 p, i64 p_from, i64 p_to, i64 q, i64 q_from, i64 q_to,
                             i64 *best_x) {
    undo_pair(w, p, p_from, q, q_from);
    memcpy(best_x, w->x, (size_t)w->P * sizeof(i64));
    shift(w, p, p_to);
    shift(w, q, q_to);
}

/* A process on machine m other than p, drawn uniformly by rejection (machines hold P/M processes
 * on average), or -1 when none was found in a bounded number of draws. */
static i64 resident_of(const W *w, i64 m, i64 p) {
    for (int k = 0; k < 8 * (int)(w->P / w->M + 1); k++) {
        i64 q = (i64)(next_rand() % (uint64_t)w->P);
        if (w->x[q] == m && q != p) return q;
    }
    return -1;
}

/* Anneal for `seconds` from temperature t_start down to t_end; swaps are `swap_share` of the
 * attempts and ejection chains `chain_share`. Returns the number of moves made; best_x receives
 * the cheapest assignment seen and stats[0] its cost, stats[1] the attempts. */
i64 walk(W *w, double seconds, double t_start, double t_end, double swap_share,
         double chain_share, uint64_t seed, i64 *best_x, i64 *stats) {
    rng_state = seed;
    double began = now_s(), temp = t_start, ratio = t_end / t_start;
    i64 best = w->total, moves = 0, attempts = 0;
    int dirty = 0; /* the current assignment is the best and best_x does not hold it yet */
    memcpy(best_x, w->x, (size_t)w->P * sizeof(i64));
    for (;;) {
        if ((attempts & 1023) == 0) {
            double f = (now_s() - began) / seconds;
            if (f >= 1.0) break;
            temp = t_start * pow(ratio, f);
        }
        attempts++;
        i64 p = (i64)(next_rand() % (uint64_t)w->P);
        i64 src = w->x[p];
        i64 d;
        double kind = uniform();
        if (kind >= swap_share && kind < swap_share + chain_share) {
            /* p onto m, which q leaves for m2: p's rules are checked with q still there, q's
             * after p arrived, m's capacity once both moved (the only rule a chain can break
             * in between). */
            i64 m = (i64)(next_rand() % (uint64_t)w->M);
            if (m == src || !rules_ok(w, p, m)) continue;
            i64 q = resident_of(w, m, p);
            if (q < 0) continue;
            i64 m2 = uniform() < 0.5 ? w->initial[q] : (i64)(next_rand() % (uint64_t)w->M);
            if (m2 == m) continue;
            double charge = lock_charge(w, p, m) + lock_charge(w, q, m2);
            i64 d1 = shift(w, p, m);
            if (!fits(w, q, m2) || !rules_ok(w, q, m2)) {
                shift(w, p, src);
                continue;
            }
            d = d1 + shift(w, q, m2);
            double score = (double)d + charge;
            if (!machine_ok(w, m) || (score > 0 && uniform() >= exp(-score / temp))) {
                undo_pair(w, p, src, q, m);
                continue;
            }
            if (d > 0 && dirty) {
                save_before_pair(w, p, src, m, q, m, m2, best_x);
                dirty = 0;
            }
        } else if (kind < swap_share) {
            i64 q = (i64)(next_rand() % (uint64_t)w->P);
            i64 dst = w->x[q];
            if (dst == src || w->service[p] == w->service[q]) continue;
            if (!rules_ok(w, p, dst)) continue;
            double charge = lock_charge(w, p, dst) + lock_charge(w, q, src);
            i64 d1 = shift(w, p, dst);
            if (!rules_ok(w, q, src)) {
                shift(w, p, src);
                continue;
            }
            d = d1 + shift(w, q, src);
            double score = (double)d + charge;
            if (!machine_ok(w, src) || !machine_ok(w, dst) ||
                (score > 0 && uniform() >= exp(-score / temp))) {
                undo_pair(w, p, src, q, dst);
                continue;
            }
            if (d > 0 && dirty) {
                save_before_pair(w, p, src, dst, q, dst, src, best_x);
                dirty = 0;
            }
        } else {
            i64 m = (i64)(next_rand() % (uint64_t)w->M);
            if (m == src || !fits(w, p, m) || !rules_ok(w, p, m)) continue;
            d = delta(w, p, m);
            double score = (double)d + lock_charge(w, p, m);
            if (score > 0 && uniform() >= exp(-score / temp)) continue;
            if (d > 0 && dirty) {
                memcpy(best_x, w->x, (size_t)w->P * sizeof(i64));
                dirty = 0;
            }
            apply(w, p, m, d);
        }
        moves++;
        if (w->total < best) {
            best = w->total;
            dirty = 1;
        }
    }
    if (dirty) memcpy(best_x, w->x, (size_t)w->P * sizeof(i64));
    stats[0] = best;
    stats[1] = attempts;
    return moves;
}
