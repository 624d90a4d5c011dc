// A persistent worker pool for the many short parallel regions of one forward pass (about 50 per
// EfficientNet image, some under 50 us). Waking a thread through the OS costs more than such a region,
// so workers spin for a while after each job and only then sleep on a condition variable.
#include "CKernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 63
/* How long an idle worker keeps spinning before it sleeps: longer than the gap between two layers,
   short enough that an idle process gives its cores back almost at once. */
#define SPIN_NANOSECONDS 200000L

typedef struct {
    hk_pool_body body;
    void *context;
    long chunks;
    long participants;
    atomic_long joined;             /* participants so far, the caller first */
    atomic_long next;
    atomic_long done;
} job_t;

static struct {
    pthread_mutex_t lock;           /* guards sleeping and the condition */
    pthread_cond_t wake;
    atomic_long generation;         /* bumped for every job */
    _Atomic(job_t *) job;           /* NULL between jobs */
    atomic_int busy;                /* workers that may still dereference job */
    atomic_int sleepers;
    atomic_flag caller;             /* one caller at a time; others run inline */
    int workers;
    pthread_once_t once;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, 0, 0, ATOMIC_FLAG_INIT, 0, PTHREAD_ONCE_INIT};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void run_chunks(job_t *job) {
    long participant = atomic_fetch_add(&job->joined, 1);
    if (participant >= job->participants) return;
    long chunk;
    while ((chunk = atomic_fetch_add(&job->next, 1)) < job->chunks) {
        job->body(job->context, chunk, participant);
        atomic_fetch_add(&job->done, 1);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    long seen = atomic_load(&pool.generation);
    for (;;) {
        long spin_start = now_nanoseconds();
        for (unsigned spins = 1; atomic_load(&pool.generation) == seen; spins++) {
            cpu_relax();
            if ((spins & 255) == 0 && now_nanoseconds() - spin_start > SPIN_NANOSECONDS) {
                pthread_mutex_lock(&pool.lock);
                atomic_fetch_add(&pool.sleepers, 1);
                while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.lock);
            }
        }
        seen = atomic_load(&pool.generation);
        /* busy before job: a caller that saw busy == 0 after clearing job is never dereferenced again. */
        atomic_fetch_add(&pool.busy, 1);
        job_t *job = atomic_load(&pool.job);
        if (job != NULL) run_chunks(job);
        atomic_fetch_sub(&pool.busy, 1);
    }
    return NULL;
}

static void start_workers(void) {
    long cpus = 1;
#ifdef _SC_NPROCESSORS_ONLN
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    int wanted = cpus > 1 ? (int)(cpus - 1) : 0;
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker_main, NULL) == 0) pool.workers++;
    }
    pthread_attr_destroy(&attributes);
}

void hk_pool_run(long chunks, long participants, hk_pool_body body, void *context) {
    if (chunks <= 0) return;
    if (participants > chunks) participants = chunks;
    if (participants > 1) pthread_once(&pool.once, start_workers);
    /* One participant, nested calls and concurrent callers (the pool is busy) run on the calling thread. */
    if (participants <= 1 || pool.workers == 0 || atomic_flag_test_and_set(&pool.caller)) {
        for (long chunk = 0; chunk < chunks; chunk++) body(context, chunk, 0);
        return;
    }
    job_t job = {body, context, chunks, participants, 0, 0, 0};
    atomic_store(&pool.job, &job);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_chunks(&job);
    while (atomic_load(&job.done) < chunks) cpu_relax();
    atomic_store(&pool.job, NULL);
    while (atomic_load(&pool.busy) > 0) cpu_relax();
    atomic_flag_clear(&pool.caller);
}
