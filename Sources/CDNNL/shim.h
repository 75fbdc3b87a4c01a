// oneDNN (Debian libdnnl-dev 2.6) C API, imported into Swift as the CDNNL module.
#ifndef VERNIER_CDNNL_SHIM_H
#define VERNIER_CDNNL_SHIM_H
#include <dnnl.h>
#include <dnnl_debug.h>
#endif
