// zlib (Debian zlib1g-dev): inflate for np.savez_compressed archives, crc32 for writing.
#include <zlib.h>
