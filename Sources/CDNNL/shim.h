// oneDNN (Debian libdnnl-dev 2.6) C API, imported into Swift as the CDNNL module, plus
// the few libgomp entry points the executor's thread pool uses. Debian's oneDNN threads
// with GNU OpenMP, so Vernier's own kernels run on the same OpenMP team: one pool for
// the whole process, sized once by `--threads`, never two pools fighting for the cores.
#ifndef VERNIER_CDNNL_SHIM_H
#define VERNIER_CDNNL_SHIM_H
#include <dnnl.h>
#include <dnnl_debug.h>

// libgomp's ABI (what GCC emits for `#pragma omp parallel`); stable since GCC 4.9.
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
void omp_set_num_threads(int count);
int omp_get_max_threads(void);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
#endif
