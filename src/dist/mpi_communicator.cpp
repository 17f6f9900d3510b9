// The Open MPI communicator: point-to-point messages (MPI_Isend/MPI_Irecv of bytes) that every
// collective is built from, the fixed-order sums over them (dist/host_reduce.h), the deadline
// polling, and the thread that runs collectives in order. MPI's own reductions are never used.
#include "dist/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "dist/host_reduce.h"

namespace tandem::dist {

namespace {

// Every MPI call of the process goes through this lock: with it, MPI_THREAD_SERIALIZED is
// enough, and communicators on different threads never call into MPI at the same time.
std::mutex& mpi_mutex() {
    static std::mutex mutex;
    return mutex;
}

// Set once any collective failed: MPI_Finalize would then wait for a peer that may be gone, so
// the process leaves without it (and mpirun, seeing that, ends the other ranks).
std::atomic<bool> g_collective_failed{false};

std::string mpi_error_text(int code) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
    return std::string(text, length);
}

void check_mpi(int code, const char* call, const char* file, int line) {
    if (code != MPI_SUCCESS) throw Error(file, ":", line, ": ", call, " failed: ", mpi_error_text(code));
}

#define TANDEM_MPI(call)                                       \
    do {                                                       \
        int code_;                                             \
        {                                                      \
            std::lock_guard<std::mutex> lock_(mpi_mutex());    \
            code_ = (call);                                    \
        }                                                      \
        check_mpi(code_, #call, __FILE__, __LINE__);           \
    } while (0)

void finalize_at_exit() {
    if (g_collective_failed) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

void ensure_mpi_initialized() {
    static std::once_flag once;
    std::call_once(once, [] {
        int initialized = 0;
        TANDEM_MPI(MPI_Initialized(&initialized));
        if (initialized) return;  // a test's main or a host program did it, and finalizes it
        int provided = 0;
        TANDEM_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
        if (provided < MPI_THREAD_SERIALIZED) {
            throw Error("MPI_Init_thread: the MPI library provides thread level ", provided,
                        " but tandem needs MPI_THREAD_SERIALIZED (", MPI_THREAD_SERIALIZED,
                        ") or more: collectives run on a thread of their own (use Open MPI 4)");
        }
        std::atexit(finalize_at_exit);
    });
}

// One message of a collective: bytes to or from a peer. Messages over kMaxPiece go as several,
// since MPI counts are ints.
struct Transfer {
    std::byte* data;
    size_t bytes;
    int peer;
};
constexpr size_t kMaxPiece = size_t{1} << 30;

struct JobState {
    std::mutex mutex;
    std::condition_variable finished;
    bool started = false, done = false;
    std::chrono::steady_clock::time_point started_at;
    std::string error;
};

struct Job {
    std::string what;
    std::function<void()> run;
    std::shared_ptr<JobState> state;
};

void check_host(const Tensor& t, const char* what) {
    if (t.device != Device::Host) {
        throw Error("MpiCommunicator::", what, ": tensor ", t.str(), " is on ", device_name(t.device),
                    "; the MPI communicator moves host memory (a GPU communicator, NCCL, is not "
                    "built yet): train with device=cpu under mpirun");
    }
    if (is_block_dtype(t.dtype)) {
        throw Error("MpiCommunicator::", what, ": tensor ", t.str(), " has the block dtype ",
                    dtype_name(t.dtype), ", which collectives do not split; send f32, f64 or bf16");
    }
}

void check_reducible(const Tensor& t, const char* what) {
    check_host(t, what);
    if (!is_reducible(t.dtype)) {
        throw Error("MpiCommunicator::", what, ": cannot reduce ", dtype_name(t.dtype),
                    " (tensor ", t.str(), "); reductions take f32, f64 or bf16");
    }
}

// The whole of a scatter or gather holds one part per rank, of the same dtype.
void check_split(const char* what, const char* whole_name, const Tensor& whole, const char* part_name,
                 const Tensor& part, int n_ranks) {
    if (whole.dtype != part.dtype || whole.numel() != n_ranks * part.numel()) {
        throw Error("MpiCommunicator::", what, ": ", whole_name, " ", whole.str(), " must hold ", n_ranks,
                    " (the world size) times ", part_name, " ", part.str(), " of the same dtype");
    }
}

}  // namespace

struct MpiCommunicator::Impl {
    MPI_Comm comm = MPI_COMM_NULL;
    int rank = 0, size = 1;
    double deadline_seconds = 30;
    std::atomic<uint64_t> bytes_sent{0};

    // Owned by the worker thread.
    std::vector<std::byte> scratch;  // receives land here, never in the caller's tensors
    uint64_t n_exchanges = 0;        // the tag of each exchange, identical on every rank
    std::string failure;             // the first failed collective: later ones are refused

    std::mutex queue_mutex;
    std::condition_variable queue_changed;
    std::deque<Job> queue;
    bool stopping = false;
    std::thread worker;

    std::shared_ptr<JobState> submit(std::string what, std::function<void()> run) {
        auto state = std::make_shared<JobState>();
        {
            std::lock_guard lock(queue_mutex);
            queue.push_back(Job{std::move(what), std::move(run), state});
        }
        queue_changed.notify_one();
        return state;
    }

    void wait(JobState& state) {
        // The worker's own polls end by the deadline (each of a collective's two exchanges); this
        // bound only guards against an MPI call that never returns. It counts from the job's
        // start: a job queued behind started buckets waits for them first.
        const auto limit = std::chrono::duration<double>(2 * deadline_seconds + 10);
        std::unique_lock lock(state.mutex);
        while (!state.done) {
            state.finished.wait_for(lock, std::chrono::milliseconds(500));
            if (!state.done && state.started && std::chrono::steady_clock::now() - state.started_at > limit) {
                g_collective_failed = true;
                throw Error("MpiCommunicator: a collective did not return within ", limit.count(),
                            " s although its deadline is ", deadline_seconds, " s (an MPI call hangs)");
            }
        }
        if (!state.error.empty()) throw Error(state.error);
    }

    void run_sync(std::string what, std::function<void()> run) {
        auto state = submit(std::move(what), std::move(run));
        wait(*state);
    }

    void work() {
        for (;;) {
            Job job;
            {
                std::unique_lock lock(queue_mutex);
                queue_changed.wait(lock, [&] { return stopping || !queue.empty(); });
                if (queue.empty()) return;
                job = std::move(queue.front());
                queue.pop_front();
            }
            {
                std::lock_guard lock(job.state->mutex);
                job.state->started = true;
                job.state->started_at = std::chrono::steady_clock::now();
            }
            std::string error;
            if (!failure.empty()) {
                error = Error::concat("MPI ", job.what, ": not run, an earlier collective failed: ", failure);
            } else {
                try {
                    job.run();
                } catch (const std::exception& e) {
                    error = e.what();
                    failure = error;
                    g_collective_failed = true;
                }
            }
            {
                std::lock_guard lock(job.state->mutex);
                job.state->done = true;
                job.state->error = std::move(error);
            }
            job.state->finished.notify_all();
        }
    }

    std::byte* scratch_of(size_t bytes) {
        if (scratch.size() < bytes) scratch.resize(bytes);
        return scratch.data();
    }

    std::string where(const std::string& what) const {
        return Error::concat("MPI ", what, " on rank ", rank, " of ", size);
    }

    // Posts every receive, then every send, and polls until all complete. Each exchange has a
    // tag of its own, so that a message of one collective never matches another's receive.
    void exchange(const std::string& what, const std::vector<Transfer>& sends,
                  const std::vector<Transfer>& recvs) {
        const int tag = static_cast<int>(n_exchanges++ % 32000);  // MPI guarantees tags to 32767
        std::vector<MPI_Request> requests;
        std::vector<const Transfer*> owners;  // the transfer of each request
        std::vector<size_t> piece_bytes;
        auto post = [&](const Transfer& t, bool is_recv) {
            size_t offset = 0;
            do {  // at least one message, even of zero bytes: a size mismatch is then detected
                const size_t bytes = std::min(kMaxPiece, t.bytes - offset);
                MPI_Request request;
                if (is_recv) {
                    TANDEM_MPI(MPI_Irecv(t.data + offset, static_cast<int>(bytes), MPI_BYTE, t.peer, tag, comm, &request));
                } else {
                    TANDEM_MPI(MPI_Isend(t.data + offset, static_cast<int>(bytes), MPI_BYTE, t.peer, tag, comm, &request));
                }
                requests.push_back(request);
                owners.push_back(&t);
                piece_bytes.push_back(bytes);
                offset += bytes;
            } while (offset < t.bytes);
        };
        for (const Transfer& t : recvs) post(t, true);
        const size_t n_recv_requests = requests.size();
        for (const Transfer& t : sends) post(t, false);
        poll(what, requests, owners, piece_bytes, n_recv_requests);
        uint64_t sent = 0;
        for (const Transfer& t : sends) sent += t.bytes;
        bytes_sent += sent;
    }

    void poll(const std::string& what, std::vector<MPI_Request>& requests,
              const std::vector<const Transfer*>& owners, const std::vector<size_t>& piece_bytes,
              size_t n_recv_requests) {
        using Clock = std::chrono::steady_clock;
        const auto start = Clock::now();
        const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(deadline_seconds));
        std::vector<MPI_Status> statuses(requests.size());
        // Yield while the messages are likely in flight, then back off to sleeps: a rank that
        // waits for a slower peer should not take a core from the peer's computation.
        auto nap = std::chrono::microseconds(20);
        for (;;) {
            int done = 0, code;
            {
                std::lock_guard lock(mpi_mutex());
                code = MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, statuses.data());
            }
            if (code == MPI_ERR_IN_STATUS) {
                for (size_t i = 0; i < requests.size(); ++i) {
                    const int e = statuses[i].MPI_ERROR;
                    if (e == MPI_SUCCESS || e == MPI_ERR_PENDING) continue;
                    if (i < n_recv_requests) {
                        throw Error(where(what), ": the message from rank ", owners[i]->peer,
                                    " does not fit the ", piece_bytes[i], " bytes expected (",
                                    mpi_error_text(e), "); every rank must call the same "
                                    "collectives with tensors of the same size");
                    }
                    throw Error(where(what), ": sending to rank ", owners[i]->peer, " failed: ", mpi_error_text(e));
                }
            }
            check_mpi(code, "MPI_Testall", __FILE__, __LINE__);
            if (done) break;
            const auto now = Clock::now();
            if (now > deadline) throw Error(where(what), ": ", missing_peers(requests, owners, n_recv_requests));
            if (now - start < std::chrono::milliseconds(20)) {
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(nap);
                nap = std::min(nap * 2, std::chrono::microseconds(100));
            }
        }
        for (size_t i = 0; i < n_recv_requests; ++i) {
            int count = 0;
            MPI_Get_count(&statuses[i], MPI_BYTE, &count);
            if (static_cast<size_t>(count) != piece_bytes[i]) {
                throw Error(where(what), ": rank ", owners[i]->peer, " sent ", count, " bytes where this "
                            "rank expected ", piece_bytes[i], "; every rank must call the same collectives "
                            "with tensors of the same size");
            }
        }
    }

    // Polls one request that every rank takes part in (a barrier, a communicator's creation).
    void wait_for_everyone(const std::string& what, std::vector<MPI_Request>& requests) {
        const Transfer everyone{nullptr, 0, -1};
        poll(what, requests, {&everyone}, {0}, 0);
    }

    std::string missing_peers(std::vector<MPI_Request>& requests, const std::vector<const Transfer*>& owners,
                              size_t n_recv_requests) {
        const std::string prefix = Error::concat("no progress within the deadline of ", deadline_seconds,
                                                 " s (MpiOptions::deadline_seconds): ");
        const std::string causes = " (a peer died, hangs, or called a different collective)";
        if (owners.size() == 1 && owners[0]->peer < 0) return prefix + "not every rank arrived" + causes;
        std::vector<int> silent, not_taking;
        for (size_t i = 0; i < requests.size(); ++i) {
            int complete = 1;
            {
                std::lock_guard lock(mpi_mutex());
                MPI_Request_get_status(requests[i], &complete, MPI_STATUS_IGNORE);
            }
            if (complete) continue;
            auto& list = i < n_recv_requests ? silent : not_taking;
            if (std::find(list.begin(), list.end(), owners[i]->peer) == list.end()) list.push_back(owners[i]->peer);
        }
        auto names = [](const std::vector<int>& ranks) {
            std::string s;
            for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
            return s;
        };
        std::string text = prefix;
        if (!silent.empty()) text += "no message from rank(s) " + names(silent);
        if (!silent.empty() && !not_taking.empty()) text += "; ";
        if (!not_taking.empty()) text += "rank(s) " + names(not_taking) + " did not take this rank's message";
        return text + causes;
    }

    // Chunk c of n elements: [n * c / size, n * (c + 1) / size), as even as integers allow.
    std::vector<int64_t> even_chunks(int64_t n) const {
        std::vector<int64_t> bounds(size + 1);
        for (int c = 0; c <= size; ++c) bounds[c] = n * c / size;
        return bounds;
    }

    // Chunk c of `in`, elements [bounds[c], bounds[c + 1]), summed over ranks into its owner,
    // rank c, in rank order: this rank's sum lands in out. The reduce half of every reduction.
    void reduce_to_owners(const std::string& what, const std::byte* in, void* out,
                          const std::vector<int64_t>& bounds, DType dtype, ReduceOp op) {
        const size_t es = dtype_size(dtype);
        const int64_t n_mine = bounds[rank + 1] - bounds[rank];
        std::byte* slots = scratch_of(static_cast<size_t>(size * n_mine) * es);
        std::vector<Transfer> sends, recvs;
        for (int c = 0; c < size; ++c) {
            if (c == rank) continue;
            sends.push_back({const_cast<std::byte*>(in) + bounds[c] * es, (bounds[c + 1] - bounds[c]) * es, c});
            recvs.push_back({slots + c * n_mine * es, n_mine * es, c});
        }
        exchange(what, sends, recvs);
        std::vector<const void*> parts(size);
        for (int p = 0; p < size; ++p) parts[p] = p == rank ? in + bounds[rank] * es : slots + p * n_mine * es;
        reduce_in_order(out, parts, n_mine, dtype, op);
    }

    // Each rank's `mine` (its chunk) to every rank: out's elements [bounds[c], bounds[c + 1])
    // become rank c's. The gather half of all_reduce, and all_gather itself.
    void gather_from_owners(const std::string& what, const std::byte* mine, std::byte* out,
                            const std::vector<int64_t>& bounds, size_t es) {
        std::byte* whole = scratch_of(static_cast<size_t>(bounds[size]) * es);
        const size_t bytes_mine = (bounds[rank + 1] - bounds[rank]) * es;
        std::vector<Transfer> sends, recvs;
        for (int c = 0; c < size; ++c) {
            if (c == rank) continue;
            sends.push_back({const_cast<std::byte*>(mine), bytes_mine, c});
            recvs.push_back({whole + bounds[c] * es, (bounds[c + 1] - bounds[c]) * es, c});
        }
        exchange(what, sends, recvs);
        std::memmove(out + bounds[rank] * es, mine, bytes_mine);  // mine may be that very slot
        for (const Transfer& t : recvs) std::memcpy(out + (t.data - whole), t.data, t.bytes);
    }

    void do_all_reduce(const std::string& what, Tensor x, ReduceOp op) {
        if (size == 1) return;
        const std::vector<int64_t> bounds = even_chunks(x.numel());
        std::byte* mine = x.as<std::byte>() + bounds[rank] * dtype_size(x.dtype);
        reduce_to_owners(what, x.as<std::byte>(), mine, bounds, x.dtype, op);
        gather_from_owners(what, mine, x.as<std::byte>(), bounds, dtype_size(x.dtype));
    }

    // Chunks of n elements each, one per rank: reduce_scatter's and all_gather's layout.
    std::vector<int64_t> whole_chunks(int64_t n) const {
        std::vector<int64_t> bounds(size + 1);
        for (int c = 0; c <= size; ++c) bounds[c] = n * c;
        return bounds;
    }
};

bool launched_by_mpirun() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

int launched_rank() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"})
        if (const char* value = std::getenv(name)) return std::atoi(value);
    return 0;
}

MpiCommunicator::MpiCommunicator(MpiOptions options) : impl_(std::make_unique<Impl>()) {
    if (!(options.deadline_seconds > 0)) {
        throw Error("MpiOptions::deadline_seconds must be positive, got ", options.deadline_seconds);
    }
    ensure_mpi_initialized();
    Impl& s = *impl_;
    s.deadline_seconds = options.deadline_seconds;
    // Non-blocking, and polled against the deadline like every collective: a blocking
    // MPI_Comm_dup would hold the MPI lock while it waits for the other ranks.
    TANDEM_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &s.rank));
    TANDEM_MPI(MPI_Comm_size(MPI_COMM_WORLD, &s.size));
    std::vector<MPI_Request> dup(1);
    TANDEM_MPI(MPI_Comm_idup(MPI_COMM_WORLD, &s.comm, &dup[0]));
    try {
        s.wait_for_everyone("creating the communicator (MPI_Comm_idup)", dup);
    } catch (const Error&) {
        // The pending request still points into impl_: it is left allocated, and MPI is not
        // finalised (a peer never came).
        g_collective_failed = true;
        (void)impl_.release();
        throw;
    }
    // Errors come back as codes (a truncated message, a failed peer) and become Errors here,
    // instead of MPI's default handler aborting the job without saying which collective failed.
    TANDEM_MPI(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
    s.worker = std::thread([&s] { s.work(); });
}

MpiCommunicator::~MpiCommunicator() {
    Impl& s = *impl_;
    {
        std::lock_guard lock(s.queue_mutex);
        s.stopping = true;
    }
    s.queue_changed.notify_one();
    s.worker.join();
    if (!s.failure.empty()) {
        // Receives of the failed collective may still be posted into the scratch buffer: it is
        // left allocated, and the communicator is not freed (that would wait for them).
        new std::vector<std::byte>(std::move(s.scratch));
        return;
    }
    std::lock_guard lock(mpi_mutex());
    MPI_Comm_free(&s.comm);
}

int MpiCommunicator::rank() const { return impl_->rank; }
int MpiCommunicator::size() const { return impl_->size; }
bool collective_failed() { return g_collective_failed; }

uint64_t MpiCommunicator::bytes_sent() const { return impl_->bytes_sent; }

void MpiCommunicator::all_reduce(Tensor x, ReduceOp op) {
    check_reducible(x, "all_reduce");
    const std::string what = "all_reduce of " + x.str();
    impl_->run_sync(what, [this, what, x, op] { impl_->do_all_reduce(what, x, op); });
}

namespace {
struct MpiPending final : PendingCollective {
    MpiCommunicator::Impl* impl;
    std::shared_ptr<JobState> state;
    bool waited = false;
    MpiPending(MpiCommunicator::Impl* impl, std::shared_ptr<JobState> state) : impl(impl), state(std::move(state)) {}
    void wait() override;
};
}  // namespace

void MpiPending::wait() {
    if (waited) return;
    waited = true;
    impl->wait(*state);
}

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_reduce(Tensor x, ReduceOp op) {
    check_reducible(x, "start_all_reduce");
    const std::string what = "all_reduce of " + x.str() + " (started)";
    auto state = impl_->submit(what, [this, what, x, op] { impl_->do_all_reduce(what, x, op); });
    return std::make_unique<MpiPending>(impl_.get(), std::move(state));
}

void MpiCommunicator::reduce_scatter(Tensor out, Tensor in) {
    check_reducible(in, "reduce_scatter");
    check_host(out, "reduce_scatter");
    check_split("reduce_scatter", "in", in, "out", out, size());
    const std::string what = "reduce_scatter of " + in.str();
    impl_->run_sync(what, [this, what, out, in] {
        Impl& s = *impl_;
        s.reduce_to_owners(what, in.as<std::byte>(), out.data, s.whole_chunks(out.numel()), in.dtype, ReduceOp::Sum);
    });
}

void MpiCommunicator::all_gather(Tensor out, Tensor in) {
    check_host(in, "all_gather");
    check_host(out, "all_gather");
    check_split("all_gather", "out", out, "in", in, size());
    const std::string what = "all_gather of " + in.str();
    impl_->run_sync(what, [this, what, out, in] {
        Impl& s = *impl_;
        s.gather_from_owners(what, in.as<std::byte>(), out.as<std::byte>(), s.whole_chunks(in.numel()),
                             dtype_size(in.dtype));
    });
}

void MpiCommunicator::broadcast(Tensor x, int root) {
    check_host(x, "broadcast");
    if (root < 0 || root >= size()) {
        throw Error("MpiCommunicator::broadcast: root ", root, " is not a rank of a world of ", size());
    }
    const std::string what = "broadcast of " + x.str() + " from rank " + std::to_string(root);
    impl_->run_sync(what, [this, what, x, root] {
        Impl& s = *impl_;
        std::vector<Transfer> sends, recvs;
        if (s.rank == root) {
            for (int c = 0; c < s.size; ++c)
                if (c != root) sends.push_back({x.as<std::byte>(), x.bytes(), c});
        } else {
            recvs.push_back({s.scratch_of(x.bytes()), x.bytes(), root});
        }
        s.exchange(what, sends, recvs);
        if (s.rank != root) std::memcpy(x.data, recvs[0].data, x.bytes());
    });
}

void MpiCommunicator::barrier() {
    impl_->run_sync("barrier", [this] {
        Impl& s = *impl_;
        std::vector<MPI_Request> requests(1);
        TANDEM_MPI(MPI_Ibarrier(s.comm, &requests[0]));
        s.wait_for_everyone("barrier", requests);
    });
}

std::unique_ptr<Communicator> make_communicator(MpiOptions options) {
    if (launched_by_mpirun()) return std::make_unique<MpiCommunicator>(options);
    return std::make_unique<LocalCommunicator>();
}

}  // namespace tandem::dist
