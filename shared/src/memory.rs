//! Giving freed heap back to the system.

/// Returns the heap's free pages to the system. Both daemons call it after each reconcile: a
/// sync of a thousand objects, or a hundred registry scans at once, allocate tens of MiB that are
/// all freed when they end, but glibc's malloc keeps them, so RSS would stay at the peak
/// (`malloc_trim` takes about a millisecond on heaps of that size). A no-op with other C
/// libraries.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointer; it only unmaps pages malloc holds free.
        unsafe {
            malloc_trim(0);
        }
    }
}
