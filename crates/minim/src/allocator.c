/* Options of the process allocator (mimalloc), named by the header of the mimalloc
 * that libmimalloc-sys compiles. See allocator.rs. */
#include <mimalloc.h>

void minim_allocator_set_purge_delay(long ms) {
  mi_option_set(mi_option_purge_delay, ms);
}

long minim_allocator_purge_delay(void) {
  return mi_option_get(mi_option_purge_delay);
}
