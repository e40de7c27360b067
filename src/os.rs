//! What `odorbot run` asks of the C library and the kernel before it starts any work: a cap
//! on malloc arenas, and one thread, the socket-mode acker's, kept at the process's first
//! scheduling priority while every other thread runs below it.
//!
//! The only module with `unsafe`: two libc calls, each with its reason.

use std::io;
use std::sync::mpsc;

/// Niceness added to every thread started after [`lower_priority`]. At +10 a busy worker
/// gets about a tenth of the CPU a runnable ack thread gets (the kernel's weights are 1024
/// and 110), so a burst of commands never delays an ack; when no ack is waiting the workers
/// have the whole CPU, so nothing is slower when the socket is quiet.
const WORK_NICENESS: i32 = 10;

/// glibc opens up to eight malloc arenas per core, one per thread that meets a locked one,
/// and each keeps the memory freed into it: most of an idle odorbot's resident set. Two
/// arenas are enough for two busy threads' allocations.
const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas. Call it first, before any thread starts.
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes any positive
    // value, and no other thread is allocating yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// Lowers the calling thread's priority by [`WORK_NICENESS`]; every thread it starts from
/// then on inherits the lower priority (on Linux niceness is per thread). A process that may
/// not change its niceness keeps running at its first priority.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let raised = niceness() + WORK_NICENESS;
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
        let failed = unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, raised) != 0
        };
        if failed {
            tracing::warn!(
                error = %io::Error::last_os_error(),
                "cannot lower the engine threads' priority; acks share the CPU with the work"
            );
        }
    }
}

/// The calling thread's niceness.
#[cfg(target_os = "linux")]
fn niceness() -> i32 {
    // SAFETY: as in `lower_priority`.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread started before [`lower_priority`], so it keeps the first priority, waiting for
/// the one job it will run: the socket-mode connections and their acks.
pub struct AckThread {
    job: mpsc::SyncSender<Job>,
}

impl AckThread {
    /// Starts the thread; it ends without running anything if this handle is dropped.
    ///
    /// # Errors
    /// The operating system refused the thread.
    pub fn start() -> io::Result<Self> {
        let (job, next) = mpsc::sync_channel::<Job>(1);
        std::thread::Builder::new()
            .name("odorbot-socket".into())
            .spawn(move || {
                if let Ok(job) = next.recv() {
                    job();
                }
            })?;
        Ok(Self { job })
    }

    /// Runs `job` on the thread.
    ///
    /// # Errors
    /// The thread is gone (it could only have panicked before its job came).
    pub fn run(self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.job
            .send(Box::new(job))
            .map_err(|_| io::Error::other("the socket-mode thread has ended"))
    }
}

#[cfg(test)]
mod tests {
    use super::{AckThread, WORK_NICENESS, lower_priority, niceness};

    #[test]
    fn a_lowered_thread_and_the_threads_it_starts_run_below_the_others() {
        let (first, lowered, inherited) = std::thread::spawn(|| {
            let first = niceness();
            lower_priority();
            let lowered = niceness();
            let inherited = std::thread::spawn(niceness).join().expect("a thread");
            (first, lowered, inherited)
        })
        .join()
        .expect("a thread");
        assert_eq!(lowered, (first + WORK_NICENESS).min(19));
        assert_eq!(inherited, lowered);
        // Only the calling thread changed.
        assert_eq!(niceness(), first);
    }

    #[test]
    fn the_ack_thread_runs_its_job() {
        let (done, finished) = std::sync::mpsc::channel();
        let thread = AckThread::start().expect("a thread");
        thread
            .run(move || {
                let name = std::thread::current().name().map(str::to_owned);
                done.send(name).expect("the test waits");
            })
            .expect("the thread takes its job");
        assert_eq!(
            finished.recv().expect("the job ran"),
            Some("odorbot-socket".to_owned())
        );
    }
}
