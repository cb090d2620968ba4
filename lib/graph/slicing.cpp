#include "graph/slicing.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace deepinside::passes {

slice_extent resolve_slice(const node& n, const shape_t& shape, const std::vector<int64_t>& starts,
                           const std::vector<int64_t>& ends, std::vector<int64_t> axes, std::vector<int64_t> steps) {
    if (axes.empty())
        for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        throw model_error(fmt::format("{}: starts, ends, axes and steps have {}, {}, {} and {} entries", n.describe(), starts.size(),
                                      ends.size(), axes.size(), steps.size()));
    const auto rank = static_cast<int64_t>(shape.size());
    slice_extent x{std::vector<int64_t>(shape.size(), 0), std::vector<int64_t>(shape.size(), 1), shape};
    std::vector<bool> seen(shape.size(), false);
    for (size_t i = 0; i < starts.size(); ++i) {
        if (axes[i] < -rank || axes[i] >= rank)
            throw model_error(fmt::format("{}: axis {} is out of range for rank {}", n.describe(), axes[i], rank));
        const auto a = static_cast<size_t>(axes[i] < 0 ? axes[i] + rank : axes[i]);
        if (seen[a]) throw model_error(fmt::format("{}: axis {} is sliced twice", n.describe(), a));
        seen[a] = true;
        const int64_t dim = shape[a], step = steps[i];
        if (step == 0) throw model_error(fmt::format("{}: step 0 on axis {}", n.describe(), a));
        int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
        int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
        if (step > 0) {
            s = std::clamp<int64_t>(s, 0, dim);
            e = std::clamp<int64_t>(e, 0, dim);
        } else {
            s = std::clamp<int64_t>(s, 0, dim - 1);
            e = std::clamp<int64_t>(e, -1, dim - 1);
        }
        // Elements s, s + step, ... before e: ceil((e - s) / step), at least 0.
        const int64_t span = e - s;
        x.shape[a] = step > 0 ? (span > 0 ? (span + step - 1) / step : 0) : (span < 0 ? (-span - step - 1) / -step : 0);
        x.start[a] = s;
        x.step[a] = step;
    }
    return x;
}

} // namespace deepinside::passes
