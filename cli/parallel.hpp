#pragma once
// Running one command as several processes under MPI (`mpirun -n K deepinside saliency ...`): each
// rank takes a deterministic share of the images, writes its own files, and rank 0 gathers what the
// ranks report and prints and writes the run's summary, as one process would have.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::cli {

/// The processes of this run: MPI's world when the program was started by mpirun (Open MPI's or a
/// PMIx launcher's environment says so), else one process, without touching MPI at all (a plain
/// run must not pay for, or depend on, MPI's start-up). RAII: MPI is finalised by the destructor.
/// One per process, made by the command that runs.
class process_group {
public:
    process_group();
    ~process_group();
    process_group(const process_group&) = delete;
    process_group& operator=(const process_group&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    /// Processes of this run on this machine (to share its CPUs between them).
    int local_size() const { return local_size_; }

    /// The part [first, last) of `count` items that this rank takes: contiguous, in order, as even as
    /// whole `unit`s allow (the commands pass their batch size, so that every batch of a parallel run
    /// is a batch of the single-process run, and its results the same bits).
    std::pair<size_t, size_t> share(size_t count, size_t unit) const;

    /// Every rank's `text`, in rank order, on rank 0 (an empty list elsewhere). Collective: every
    /// rank must call it, the same number of times.
    std::vector<std::string> gather(const std::string& text) const;

private:
    int rank_ = 0, size_ = 1, local_size_ = 1;
    bool mpi_ = false;
};

/// What a command's share of a run produces besides its files: one JSON entry per image, the lines
/// it prints, and counts summed over the ranks (maps, files).
struct rank_output {
    nlohmann::ordered_json images = nlohmann::ordered_json::array();
    std::string lines;
    std::map<std::string, int64_t> counts;
    /// Seconds summed over the ranks (what each spent on a phase).
    std::map<std::string, double> seconds;

    /// A line for the user: printed at once by a single process (to `stream`); under mpirun kept,
    /// and printed by rank 0 with every rank's in rank order once all are done.
    void say(const process_group& group, std::FILE* stream, const std::string& line);
};

/// Runs `work` (this rank's share, filling `out`). One process: runs it and returns nullopt, its
/// exceptions leaving as usual. Under mpirun, a rank's failure is caught and reported to rank 0
/// (every rank must reach the gathering, or the others would wait for ever), which prints each
/// failing rank's message and returns 1; otherwise rank 0 returns nullopt with `out` holding the
/// whole run (images and lines in rank order, counts and seconds summed), having printed every rank's lines to
/// `stream`, and the other ranks return 0 (rank 0's status is the run's: mpirun ends the whole job
/// as soon as a process exits non-zero, which could kill rank 0 before it prints).
std::optional<int> run_share(const process_group& group, const std::function<void()>& work, rank_output& out,
                             std::FILE* stream);

/// Whether this process is a rank other than 0 of an mpirun (from the launcher's environment, so it
/// can be asked before and after MPI runs): an error every rank meets alike (a bad option, a missing
/// file) is then printed by rank 0 alone.
bool is_secondary_rank();

/// The default thread count of a process of `group`: this machine's CPUs shared between the
/// processes running on it (at least 1), unless OMP_NUM_THREADS says otherwise.
int threads_per_process(const process_group& group);

} // namespace deepinside::cli
