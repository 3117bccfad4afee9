/*
 * Shared helpers of the benchmarks in bench/: a monotonic clock, the run
 * length, pinning to one core and the one row format every benchmark
 * prints, so that bench/run-all can show a single table:
 *
 *   name                                   value unit         baseline   ratio
 *
 * "ratio" is value / baseline, where the baseline is the physical limit or
 * the raw library call the benchmark is compared against (see
 * bench/README.md).  Rows without a baseline print "-".
 */
#ifndef AGENTID_BENCH_H
#define AGENTID_BENCH_H

#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Seconds each measurement runs: $BENCH_SECONDS, default def. */
static inline double
bench_seconds(double def)
{
	const char *s = getenv("BENCH_SECONDS");
	double v;

	if (s == NULL || *s == '\0')
		return def;
	v = strtod(s, NULL);
	return v > 0.01 && v < 3600 ? v : def;
}

/*
 * Keeps the process on the core it runs on now, so that a measurement and
 * its baseline see the same core (and its frequency).  Best effort.
 */
static inline void
bench_pin_one_core(void)
{
#ifdef __linux__
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
#endif
}

/* The column header, unless bench/run-all already printed it ($BENCH_NO_HEADER). */
static inline void
bench_header(void)
{
	const char *s = getenv("BENCH_NO_HEADER");

	if (s != NULL && *s != '\0')
		return;
	printf("%-44s %14s %-10s %14s %7s\n", "name", "value", "unit", "baseline", "ratio");
}

/* One row.  Pass NAN for a missing baseline or ratio. */
static inline void
bench_row(const char *name, double value, const char *unit, double baseline, double ratio)
{
	printf("%-44s %14.1f %-10s ", name, value, unit);
	if (isnan(baseline))
		printf("%14s ", "-");
	else
		printf("%14.1f ", baseline);
	if (isnan(ratio))
		printf("%7s\n", "-");
	else
		printf("%7.3f\n", ratio);
	fflush(stdout);
}

/* One operation of a measured loop; returns 0, or non-zero to abort the measurement. */
typedef int (*bench_op_fn)(void *arg);

/*
 * Runs op for about ns nanoseconds (checking the clock every few calls)
 * and adds the number of calls and the time taken to *ops and *elapsed.
 * Returns -1 when op failed.
 */
static inline int
bench_run_for(bench_op_fn op, void *arg, uint64_t ns, uint64_t *ops, uint64_t *elapsed)
{
	uint64_t start = bench_now_ns(), now = start, n = 0;
	int i;

	do {
		for (i = 0; i < 16; i++)
			if (op(arg) != 0)
				return -1;
		n += 16;
		now = bench_now_ns();
	} while (now - start < ns);
	*ops += n;
	*elapsed += now - start;
	return 0;
}

/*
 * Measures two operations against each other in one run: alternating
 * slices of 100 ms each until each has run for `seconds`, so that both see
 * the same clock speed, cache and thermal state.  Rates in operations per
 * second.  Returns -1 when an operation failed.
 */
static inline int
bench_compare(bench_op_fn a, void *arg_a, bench_op_fn b, void *arg_b, double seconds,
    double *rate_a, double *rate_b)
{
	uint64_t ops_a = 0, ops_b = 0, t_a = 0, t_b = 0, slice = 100000000u;
	uint64_t total = (uint64_t)(seconds * 1e9);

	*rate_a = *rate_b = 0;
	if (slice > total)
		slice = total;
	/* Warm up both (caches, lazy initialisation inside OpenSSL). */
	if (bench_run_for(a, arg_a, slice / 4, &ops_a, &t_a) != 0
	    || bench_run_for(b, arg_b, slice / 4, &ops_b, &t_b) != 0)
		return -1;
	ops_a = ops_b = t_a = t_b = 0;
	while (t_a < total || t_b < total) {
		if (bench_run_for(b, arg_b, slice, &ops_b, &t_b) != 0
		    || bench_run_for(a, arg_a, slice, &ops_a, &t_a) != 0)
			return -1;
	}
	*rate_a = (double)ops_a * 1e9 / (double)t_a;
	*rate_b = (double)ops_b * 1e9 / (double)t_b;
	return 0;
}

#endif
