//! Process-wide allocator settings, applied once at start by the binary.

/// Tunes glibc's allocator for a long-running server that should stay small.
///
/// - At most two malloc arenas. glibc gives threads arenas of their own (up
///   to eight per core) to avoid lock contention; each keeps the memory its
///   threads freed, so under load the process holds several copies of its
///   peak working set. Two arenas keep most of the benefit at our thread
///   count (one runtime worker per core, plus the hashing threads), and
///   measured about 5 MiB less peak RSS in the benchmark.
/// - A fixed mmap threshold of 256 KiB. Blocks above it (argon2's working
///   memory, large buffers) are mapped on their own and returned to the
///   kernel when freed. glibc otherwise raises the threshold to the size of
///   the largest block freed so far, after which a freed 19 MiB argon2
///   block would stay in the heap for good.
///
/// Call it first thing in `main`, before any thread starts. Elsewhere than
/// glibc it does nothing.
#[cfg_attr(
    all(target_os = "linux", target_env = "gnu"),
    expect(unsafe_code, reason = "two mallopt calls with integer arguments")
)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt takes two integers and only changes allocator
        // parameters; it is called before any other thread exists. A
        // refused setting (return value 0) leaves glibc's default, which
        // is safe, so the result is not checked.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}
