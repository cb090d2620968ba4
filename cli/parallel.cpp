#include "parallel.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>

#include <fmt/format.h>
#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace deepinside::cli {

namespace {

/// Whether a launcher started this process as one rank of several: Open MPI's mpirun sets
/// OMPI_COMM_WORLD_SIZE, PMIx launchers (srun, prterun) PMIX_RANK, MPICH's Hydra PMI_SIZE.
bool launched_by_mpi() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
}

void check(int status, const char* call) {
    if (status != MPI_SUCCESS) throw io_error(fmt::format("MPI: {} failed (error {})", call, status));
}

} // namespace

process_group::process_group() {
    if (!launched_by_mpi()) return;
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) check(MPI_Init(nullptr, nullptr), "MPI_Init");
    mpi_ = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
}

process_group::~process_group() {
    if (mpi_) MPI_Finalize();
}

std::pair<size_t, size_t> process_group::share(size_t count, size_t unit) const {
    unit = std::max<size_t>(unit, 1);
    const size_t units = (count + unit - 1) / unit;
    const size_t first = units * size_t(rank_) / size_t(size_), last = units * size_t(rank_ + 1) / size_t(size_);
    return {std::min(count, first * unit), std::min(count, last * unit)};
}

std::vector<std::string> process_group::gather(const std::string& text) const {
    if (!mpi_) return {text};
    int length = static_cast<int>(text.size());
    std::vector<int> lengths(is_root() ? size_t(size_) : 0);
    check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
    std::vector<int> offsets(lengths.size());
    int total = 0;
    for (size_t r = 0; r < lengths.size(); ++r) {
        offsets[r] = total;
        total += lengths[r];
    }
    std::string all(size_t(total), '\0');
    check(MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0,
                      MPI_COMM_WORLD),
          "MPI_Gatherv");
    std::vector<std::string> parts;
    for (size_t r = 0; r < lengths.size(); ++r) parts.push_back(all.substr(size_t(offsets[r]), size_t(lengths[r])));
    return parts;
}

void rank_output::say(const process_group& group, std::FILE* stream, const std::string& line) {
    if (group.size() == 1)
        fmt::print(stream, "{}\n", line);
    else
        lines += line + "\n";
}

std::optional<int> run_share(const process_group& group, const std::function<void()>& work, rank_output& out,
                             std::FILE* stream) {
    if (group.size() == 1) {
        work();
        return std::nullopt;
    }
    std::string failure;
    try {
        work();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    const nlohmann::ordered_json mine = {{"error", failure},
                                         {"images", out.images},
                                         {"lines", out.lines},
                                         {"counts", out.counts},
                                         {"seconds", out.seconds}};
    const std::vector<std::string> parts = group.gather(mine.dump());
    // Rank 0 carries the run's status and prints every failure. The others exit 0 once they have
    // handed theirs over: mpirun kills the whole job as soon as one process exits non-zero, and rank 0
    // must live to print the message.
    if (!group.is_root()) return 0;
    rank_output all;
    int status = 0;
    for (size_t r = 0; r < parts.size(); ++r) {
        const auto part = nlohmann::ordered_json::parse(parts[r]);
        if (const auto error = part["error"].get<std::string>(); !error.empty()) {
            fmt::print(stderr, "deepinside: error: rank {} of {}: {}\n", r, parts.size(), error);
            status = 1;
            continue;
        }
        fmt::print(stream, "{}", part["lines"].get<std::string>());
        for (const auto& entry : part["images"]) all.images.push_back(entry);
        for (const auto& [name, value] : part["counts"].items()) all.counts[name] += value.get<int64_t>();
        for (const auto& [name, value] : part["seconds"].items()) all.seconds[name] += value.get<double>();
    }
    if (status != 0) return status;
    out = std::move(all);
    return std::nullopt;
}

bool is_secondary_rank() {
    for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
        if (const char* value = std::getenv(name)) return std::string(value) != "0";
    return false;
}

int threads_per_process(const process_group& group) {
    if (group.local_size() <= 1) return 0; // the library's default
    if (const char* env = std::getenv("OMP_NUM_THREADS"); env && std::atoi(env) > 0) return 0;
    return std::max(1, default_threads() / group.local_size());
}

} // namespace deepinside::cli
