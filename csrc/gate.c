/* The fork gate: a fork waits until every running compiled pass stands between two of its steps.
 *
 * OpenBLAS tears its thread pool down in its fork handler; under a product that is running in
 * another thread, the pool's threads and the caller wait for each other for good (a fork from
 * one thread while another trains with two BLAS threads hangs). So the engine counts its
 * passes (fp_pass_begin/end, without the GIL), looks at fp_fork_pending() between steps (one
 * relaxed load) and parks there while a fork is pending; the forking thread, from Python's
 * before-fork hook and without the GIL, waits in fp_fork_prepare until every running pass is
 * parked, forks, and lets them go on (fp_fork_done). A pass is never stopped inside a step. */
#include "fastprop.h"

#if defined(_WIN32)
/* no fork: nothing to wait for */
void fp_pass_begin(void) {}
void fp_pass_end(void) {}
int fp_fork_pending(void) { return 0; }
void fp_park(void) {}
void fp_fork_prepare(void) {}
void fp_fork_done(int child) { (void)child; }
#else
#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_change = PTHREAD_COND_INITIALIZER;
static atomic_int pending;   /* a fork is waiting */
static int running, parked;  /* passes running, and of them parked (under gate_lock) */

void fp_pass_begin(void)
{
    pthread_mutex_lock(&gate_lock);
    while (atomic_load(&pending)) /* a fork is under way: start after it */
        pthread_cond_wait(&gate_change, &gate_lock);
    running++;
    pthread_mutex_unlock(&gate_lock);
}

void fp_pass_end(void)
{
    pthread_mutex_lock(&gate_lock);
    running--;
    pthread_cond_broadcast(&gate_change);
    pthread_mutex_unlock(&gate_lock);
}

int fp_fork_pending(void)
{
    return atomic_load_explicit(&pending, memory_order_relaxed);
}

void fp_park(void)
{
    pthread_mutex_lock(&gate_lock);
    parked++;
    pthread_cond_broadcast(&gate_change);
    while (atomic_load(&pending))
        pthread_cond_wait(&gate_change, &gate_lock);
    parked--;
    pthread_mutex_unlock(&gate_lock);
}

void fp_fork_prepare(void)
{
    pthread_mutex_lock(&gate_lock);
    atomic_store(&pending, 1);
    while (parked < running)
        pthread_cond_wait(&gate_change, &gate_lock);
    /* the lock is held across the fork: the child gets it in a known state (released below) */
}

void fp_fork_done(int child)
{
    atomic_store(&pending, 0);
    if (child) { /* the child has this thread only: no pass runs in it */
        running = parked = 0;
        pthread_mutex_unlock(&gate_lock);
        pthread_mutex_init(&gate_lock, NULL);
        pthread_cond_init(&gate_change, NULL);
        return;
    }
    pthread_cond_broadcast(&gate_change);
    pthread_mutex_unlock(&gate_lock);
}
#endif
