#pragma once
// MPI for metagrad's data parallelism: the environment (MPI_Init / MPI_Finalize) and the communicator whose
// collectives sharded_loss_and_gradient and distributed::train use. Optional: a program that includes this header
// links MPI (CMake: MPI::MPI_CXX); the rest of metagrad never needs MPI.
//
// No sum here is left to MPI: the standard does not fix the order of MPI_Allreduce, and implementations differ. The
// communicator only gathers (MPI_Allgatherv) and metagrad adds up in its own fixed order (see sharded_gradient.hpp).
//
// Only the thread that initialized MPI calls it (MPI_THREAD_FUNNELED); metagrad's worker threads never do.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: Open MPI's deprecated C++ bindings are not warning-free
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "metagrad/error.hpp"

namespace metagrad::distributed {
namespace detail {

inline void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

template <class T> MPI_Datatype mpi_type();
template <> inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <> inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <> inline MPI_Datatype mpi_type<std::uint64_t>() { return MPI_UINT64_T; }

/// metagrad's exception types, numbered so a failure on one rank can be rethrown as the same type on every rank.
enum class ErrorKind : int { none = 0, error, shape, tape, value, io, data, training, other };

inline ErrorKind kind_of(std::exception_ptr failure, std::string& message) {
  try {
    std::rethrow_exception(failure);
  } catch (const shape_error& e) { message = e.what(); return ErrorKind::shape;
  } catch (const tape_error& e) { message = e.what(); return ErrorKind::tape;
  } catch (const value_error& e) { message = e.what(); return ErrorKind::value;
  } catch (const io_error& e) { message = e.what(); return ErrorKind::io;
  } catch (const data_error& e) { message = e.what(); return ErrorKind::data;
  } catch (const training_error& e) { message = e.what(); return ErrorKind::training;
  } catch (const error& e) { message = e.what(); return ErrorKind::error;
  } catch (const std::exception& e) { message = e.what(); return ErrorKind::other;
  } catch (...) { message = "an exception that is not a std::exception"; return ErrorKind::other;
  }
}

[[noreturn]] inline void throw_as(ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::shape: throw shape_error(message);
    case ErrorKind::tape: throw tape_error(message);
    case ErrorKind::value: throw value_error(message);
    case ErrorKind::io: throw io_error(message);
    case ErrorKind::data: throw data_error(message);
    case ErrorKind::training: throw training_error(message);
    default: throw error(message);
  }
}

}  // namespace detail

/// Whether an MPI launcher (mpirun, mpiexec, srun) started this process: a program that also runs on its own can leave
/// MPI alone when it was not (Open MPI, MPICH's Hydra and PMIx-based launchers set these variables).
inline bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

/// Initializes MPI unless the program already has, and finalizes it at the end of its scope if it initialized it.
/// Make one at the top of main(), before any Communicator.
class Environment {
 public:
  /// MPI_Init_thread with MPI_THREAD_FUNNELED; throws error if MPI cannot start.
  Environment(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    detail::check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owns_ = true;
  }
  ~Environment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  bool owns_ = false;
};

/// A private copy of an MPI communicator (so metagrad's messages never meet the program's own) with the collectives
/// metagrad's data parallelism needs. Every member that says "collective" must be called by every rank, in the same
/// order. Errors from MPI are returned, not fatal, and thrown as metagrad::error.
class Communicator {
 public:
  /// Duplicates `comm` (default: every process of the job).
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD) {
    detail::check_mpi(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~Communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  /// This process's rank, from 0.
  int rank() const { return rank_; }
  /// Number of ranks.
  int size() const { return size_; }
  /// The underlying MPI communicator (metagrad's private copy).
  MPI_Comm get() const { return comm_; }

  /// Collective: every rank's `mine` (counts[r] numbers from rank r), concatenated in rank order into `out` (the sum
  /// of the counts long), on every rank.
  template <class T>
  void all_gather(std::span<const T> mine, std::span<const std::int64_t> counts, std::span<T> out) const {
    if (static_cast<int>(counts.size()) != size_ || counts[static_cast<std::size_t>(rank_)] != static_cast<std::int64_t>(mine.size()))
      throw value_error("Communicator::all_gather: " + std::to_string(mine.size()) + " numbers from rank " +
                        std::to_string(rank_) + " do not match the counts given for " + std::to_string(counts.size()) +
                        " ranks (" + std::to_string(size_) + " expected)");
    std::vector<int> count(counts.size()), offset(counts.size());
    std::int64_t total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      if (total + counts[r] > std::numeric_limits<int>::max())
        throw value_error("Communicator::all_gather: more than 2^31 - 1 numbers in one exchange");
      count[r] = static_cast<int>(counts[r]);
      offset[r] = static_cast<int>(total);
      total += counts[r];
    }
    if (static_cast<std::int64_t>(out.size()) != total)
      throw value_error("Communicator::all_gather: room for " + std::to_string(out.size()) + " numbers, " +
                        std::to_string(total) + " expected");
    detail::check_mpi(MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), detail::mpi_type<T>(), out.data(),
                                     count.data(), offset.data(), detail::mpi_type<T>(), comm_),
                      "MPI_Allgatherv");
    bytes_received_ += static_cast<std::uint64_t>(total - static_cast<std::int64_t>(mine.size())) * sizeof(T);
  }

  /// Collective: returns when no rank failed; otherwise every rank throws the same exception — the type and message
  /// of the lowest failing rank's, prefixed with that rank — so no rank is left waiting in a later collective.
  void agree(std::exception_ptr local_failure) const {
    std::string message;
    const int mine = static_cast<int>(local_failure ? detail::kind_of(local_failure, message) : detail::ErrorKind::none);
    std::vector<int> kinds(static_cast<std::size_t>(size_));
    detail::check_mpi(MPI_Allgather(&mine, 1, MPI_INT, kinds.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    int failed = 0;
    while (failed < size_ && kinds[static_cast<std::size_t>(failed)] == 0) ++failed;
    if (failed == size_) return;
    ++failures_;
    int length = static_cast<int>(message.size());
    detail::check_mpi(MPI_Bcast(&length, 1, MPI_INT, failed, comm_), "MPI_Bcast");
    message.resize(static_cast<std::size_t>(length));
    detail::check_mpi(MPI_Bcast(message.data(), length, MPI_CHAR, failed, comm_), "MPI_Bcast");
    detail::throw_as(static_cast<detail::ErrorKind>(kinds[static_cast<std::size_t>(failed)]),
                     "rank " + std::to_string(failed) + " of " + std::to_string(size_) + ": " + message);
  }

  /// Collective: throws training_error on every rank unless every rank passed the same `value` (e.g. a tree_hash of
  /// its parameters); `what` names it in the message.
  void check_identical(std::uint64_t value, const std::string& what) const {
    const std::vector<std::int64_t> counts(static_cast<std::size_t>(size_), 1);
    std::vector<std::uint64_t> all(counts.size());
    all_gather(std::span<const std::uint64_t>(&value, 1), std::span<const std::int64_t>(counts), std::span<std::uint64_t>(all));
    for (int r = 1; r < size_; ++r)
      if (all[static_cast<std::size_t>(r)] != all[0])
        throw training_error(what + " differ between ranks: rank 0 has hash " + std::to_string(all[0]) + ", rank " +
                             std::to_string(r) + " has " + std::to_string(all[static_cast<std::size_t>(r)]) +
                             " (data-parallel ranks must hold the same bits)");
  }

  /// Collective: waits for every rank.
  void barrier() const { detail::check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

  /// How many agree() calls ended in an error (distributed::train uses it not to agree twice on one failure).
  std::uint64_t failures() const { return failures_; }
  /// Bytes this rank has received in all_gather calls so far (what the data parallelism moves).
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  mutable std::uint64_t failures_ = 0, bytes_received_ = 0;
};

}  // namespace metagrad::distributed
