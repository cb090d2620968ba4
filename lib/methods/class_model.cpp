// Class model visualisation: plain gradient ascent on the network's input (see class_model.hpp).
#include <deepinside/class_model.hpp>
#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace deepinside {

namespace {

/// Per-channel preprocessing constants of an input with `channels` channels.
struct channel_constants {
    std::vector<float> mean, std;
    float scale = 1.0f;
};

channel_constants constants_of(const preprocess_options& p, int64_t channels) {
    auto spread = [&](const std::vector<float>& v, const char* name) {
        if (v.size() != 1 && static_cast<int64_t>(v.size()) != channels)
            throw input_error(fmt::format("class model: preprocessing {} has {} values, expected 1 or {} (one per channel)", name,
                                          v.size(), channels));
        std::vector<float> out(static_cast<size_t>(channels));
        for (int64_t c = 0; c < channels; ++c) {
            out[size_t(c)] = v.size() == 1 ? v[0] : v[size_t(c)];
            if (!std::isfinite(out[size_t(c)])) throw input_error(fmt::format("class model: preprocessing {} is not finite", name));
        }
        return out;
    };
    channel_constants k{spread(p.mean, "mean"), spread(p.std, "std"), p.scale};
    for (float s : k.std)
        if (s == 0.0f) throw input_error("class model: preprocessing std has a zero value");
    if (!std::isfinite(p.scale) || p.scale <= 0.0f)
        throw input_error(fmt::format("class model: preprocessing scale must be a positive number, got {}", p.scale));
    return k;
}

void check_options(const class_model_options& o, int64_t height, int64_t width) {
    if (o.steps < 0) throw input_error(fmt::format("class model: steps must be >= 0, got {}", o.steps));
    if (!std::isfinite(o.lr) || o.lr <= 0.0f) throw input_error(fmt::format("class model: lr must be a positive number, got {}", o.lr));
    if (!std::isfinite(o.l2) || o.l2 < 0.0f) throw input_error(fmt::format("class model: l2 must be a number >= 0, got {}", o.l2));
    if (!std::isfinite(o.blur_sigma) || o.blur_sigma < 0.0f)
        throw input_error(fmt::format("class model: blur sigma must be a number >= 0, got {}", o.blur_sigma));
    if (o.blur_every < 0) throw input_error(fmt::format("class model: blur_every must be >= 0, got {}", o.blur_every));
    if (o.blur_sigma > 0.0f && o.blur_every < 1)
        throw input_error(fmt::format("class model: a blur of sigma {} needs blur_every >= 1 (blur after every K-th step)", o.blur_sigma));
    if (o.blur_sigma > 0.0f && std::ceil(3.0f * o.blur_sigma) >= float(std::min(height, width)))
        throw input_error(fmt::format("class model: blur sigma {} is too large for a {}x{} input (3 sigma must be below its side)",
                                      o.blur_sigma, height, width));
    if (o.jitter < 0 || o.jitter >= std::min(height, width))
        throw input_error(fmt::format("class model: jitter must be >= 0 and below the input's side ({}), got {}",
                                      std::min(height, width), o.jitter));
}

/// SplitMix64: turns (seed, class) into a well-mixed seed for that image's generator.
uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/// dst = src rolled by (dy, dx) on each [H, W] plane: dst[y][x] = src[(y - dy) mod H][(x - dx) mod W].
void roll_planes(const float* src, float* dst, int64_t planes, int64_t h, int64_t w, int64_t dy, int64_t dx) {
    dy = ((dy % h) + h) % h;
    dx = ((dx % w) + w) % w;
    for (int64_t p = 0; p < planes; ++p) {
        const float* s = src + p * h * w;
        float* d = dst + p * h * w;
        for (int64_t y = 0; y < h; ++y) {
            const float* row = s + ((y - dy + h) % h) * w;
            float* out = d + y * w;
            std::memcpy(out + dx, row, size_t(w - dx) * sizeof(float));
            std::memcpy(out, row + (w - dx), size_t(dx) * sizeof(float));
        }
    }
}

std::vector<float> gaussian_kernel(float sigma) {
    const int radius = static_cast<int>(std::ceil(3.0f * sigma));
    std::vector<float> k(size_t(2 * radius + 1));
    double sum = 0;
    for (int i = -radius; i <= radius; ++i) sum += k[size_t(i + radius)] = static_cast<float>(std::exp(-0.5 * i * i / (double(sigma) * sigma)));
    for (float& v : k) v = static_cast<float>(v / sum);
    return k;
}

/// Separable Gaussian blur of every [H, W] plane, borders replicated; `tmp` holds one plane.
void blur_planes(float* data, int64_t planes, int64_t h, int64_t w, const std::vector<float>& kernel, std::vector<float>& tmp) {
    const int64_t r = static_cast<int64_t>(kernel.size() / 2);
    tmp.resize(size_t(h * w));
    for (int64_t p = 0; p < planes; ++p) {
        float* plane = data + p * h * w;
        // Rows into tmp, then columns back into the plane.
        for (int64_t y = 0; y < h; ++y) {
            const float* row = plane + y * w;
            float* out = tmp.data() + y * w;
            for (int64_t x = 0; x < w; ++x) {
                float acc = 0;
                for (int64_t i = -r; i <= r; ++i) acc += kernel[size_t(i + r)] * row[std::clamp(x + i, int64_t(0), w - 1)];
                out[x] = acc;
            }
        }
        for (int64_t y = 0; y < h; ++y) {
            float* out = plane + y * w;
            std::fill_n(out, w, 0.0f);
            for (int64_t i = -r; i <= r; ++i) {
                const float* row = tmp.data() + std::clamp(y + i, int64_t(0), h - 1) * w;
                const float k = kernel[size_t(i + r)];
                for (int64_t x = 0; x < w; ++x) out[x] += k * row[x];
            }
        }
    }
}

/// Score of image k's class and its softmax probability (in double) from a [K, classes] row block.
void score_and_probability(const tensor& scores, const std::vector<int64_t>& classes, std::vector<float>& score,
                           std::vector<float>& probability) {
    const int64_t n = scores.size() / static_cast<int64_t>(classes.size());
    score.resize(classes.size());
    probability.resize(classes.size());
    for (size_t k = 0; k < classes.size(); ++k) {
        const float* row = scores.data.data() + static_cast<int64_t>(k) * n;
        const double top = *std::max_element(row, row + n);
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += std::exp(double(row[i]) - top);
        score[k] = row[classes[k]];
        probability[k] = static_cast<float>(std::exp(double(row[classes[k]]) - top) / sum);
    }
}

} // namespace

class_model_result class_model(network& net, const std::vector<int64_t>& classes, const class_model_options& options,
                               const preprocess_options& preprocessing, const std::function<void(int, int)>& progress) {
    const shape_t& in = net.input_shape();
    if (classes.empty()) throw input_error("class model: no class given");
    if (in.size() != 4) throw input_error(fmt::format("class model: the network's input {} is not NCHW", to_string(in)));
    const auto batch = static_cast<int64_t>(classes.size());
    if (in[0] != batch)
        throw input_error(fmt::format("class model: {} classes need a network compiled for a batch of {}; this one has batch {}",
                                      batch, batch, in[0]));
    const int64_t channels = in[1], height = in[2], width = in[3], plane = height * width, per_image = channels * plane;
    check_options(options, height, width);
    const channel_constants pre = constants_of(preprocessing, channels);
    const shape_t score_shape = net.shape_of(net.score_tensor());
    const int64_t num_classes = score_shape.size() >= 2 && score_shape[0] == batch ? element_count(score_shape) / batch : -1;
    if (num_classes < 0 || score_shape.size() > 2)
        throw input_error(fmt::format("class model: the score tensor '{}' of shape {} is not a vector of class scores per image",
                                      net.score_tensor(), to_string(score_shape)));
    for (int64_t c : classes)
        if (c < 0 || c >= num_classes)
            throw input_error(fmt::format("class model: class {} is out of range (the network has {} classes, 0..{})", c,
                                          num_classes, num_classes - 1));

    // The start (see class_model_options::start).
    tensor x(in);
    const bool has_mean = std::any_of(pre.mean.begin(), pre.mean.end(), [](float m) { return m != 0.0f; });
    std::vector<std::mt19937_64> rngs;
    for (int64_t c : classes) rngs.emplace_back(mix(options.seed ^ mix(static_cast<uint64_t>(c))));
    if (options.init != class_model_options::start::zero && !has_mean)
        for (int64_t k = 0; k < batch; ++k)
            for (int64_t c = 0; c < channels; ++c)
                std::fill_n(x.data.data() + k * per_image + c * plane, plane, 127.5f * pre.scale / pre.std[size_t(c)]);
    if (options.init == class_model_options::start::noise)
        for (int64_t k = 0; k < batch; ++k) {
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (int64_t c = 0; c < channels; ++c) {
                const float sd = 8.0f * pre.scale / std::fabs(pre.std[size_t(c)]);
                float* p = x.data.data() + k * per_image + c * plane;
                for (int64_t i = 0; i < plane; ++i) p[i] += sd * normal(rngs[size_t(k)]);
            }
        }

    // The valid input range per channel, for clip (std may be negative: order the bounds).
    std::vector<float> lo(static_cast<size_t>(channels)), hi(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) {
        const float a = (0.0f - pre.mean[size_t(c)]) / pre.std[size_t(c)], b = (255.0f * pre.scale - pre.mean[size_t(c)]) / pre.std[size_t(c)];
        lo[size_t(c)] = std::min(a, b);
        hi[size_t(c)] = std::max(a, b);
    }

    const std::vector<backward_request> request{{target{target::kind::class_score, net.score_tensor(), classes, {}}, backward_rule::gradient}};
    net.prepare_backward(1);
    const std::vector<float> kernel = options.blur_sigma > 0.0f ? gaussian_kernel(options.blur_sigma) : std::vector<float>{};
    std::vector<float> blur_tmp;
    tensor rolled(options.jitter > 0 ? in : shape_t{0});
    std::vector<float> unrolled(options.jitter > 0 ? size_t(x.size()) : 0);
    std::vector<int64_t> dy(static_cast<size_t>(batch)), dx(static_cast<size_t>(batch));
    const float decay = 1.0f - 2.0f * options.lr * options.l2, lr = options.lr;

    class_model_result result;
    for (int step = 0; step < options.steps; ++step) {
        if (options.jitter > 0) {
            std::uniform_int_distribution<int64_t> shift(-options.jitter, options.jitter);
            for (int64_t k = 0; k < batch; ++k) {
                dy[size_t(k)] = shift(rngs[size_t(k)]);
                dx[size_t(k)] = shift(rngs[size_t(k)]);
                roll_planes(x.data.data() + k * per_image, rolled.data.data() + k * per_image, channels, height, width, dy[size_t(k)],
                            dx[size_t(k)]);
            }
        }
        net.forward(options.jitter > 0 ? rolled : x);
        if (step == 0) score_and_probability(net.read(net.score_tensor()), classes, result.score_start, result.probability_start);
        const tensor signal = std::move(net.backward(request).front());
        const float* g = signal.data.data();
        if (options.jitter > 0) {
            for (int64_t k = 0; k < batch; ++k)
                roll_planes(signal.data.data() + k * per_image, unrolled.data() + k * per_image, channels, height, width,
                            -dy[size_t(k)], -dx[size_t(k)]);
            g = unrolled.data();
        }
        // I <- I + lr (dS/dI - 2 l2 I), one fused pass.
        float* xs = x.data.data();
        const int64_t count = x.size();
#pragma omp parallel for simd schedule(static) num_threads(net.threads()) if (count > (1 << 16))
        for (int64_t i = 0; i < count; ++i) xs[i] = xs[i] * decay + lr * g[i];
        if (options.blur_sigma > 0.0f && (step + 1) % options.blur_every == 0)
            blur_planes(xs, batch * channels, height, width, kernel, blur_tmp);
        if (options.clip)
            for (int64_t k = 0; k < batch; ++k)
                for (int64_t c = 0; c < channels; ++c) {
                    float* p = xs + k * per_image + c * plane;
                    const float a = lo[size_t(c)], b = hi[size_t(c)];
                    for (int64_t i = 0; i < plane; ++i) p[i] = std::min(std::max(p[i], a), b);
                }
        if (progress) progress(step + 1, options.steps);
    }
    net.forward(x);
    score_and_probability(net.read(net.score_tensor()), classes, result.score_end, result.probability_end);
    if (options.steps == 0) {
        result.score_start = result.score_end;
        result.probability_start = result.probability_end;
    }
    result.images = std::move(x);
    return result;
}

image class_model_image(const tensor& one_image, const preprocess_options& preprocessing) {
    if (one_image.shape.size() != 3 || (one_image.shape[0] != 1 && one_image.shape[0] != 3))
        throw input_error(fmt::format("class model image: expected [C, H, W] with C 1 or 3, got {}", to_string(one_image.shape)));
    require_finite(one_image, "class model image");
    const int64_t channels = one_image.shape[0], h = one_image.shape[1], w = one_image.shape[2], plane = h * w;
    const channel_constants pre = constants_of(preprocessing, channels);
    std::vector<float> pixels(size_t(one_image.size()));
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < plane; ++i)
            pixels[size_t(c * plane + i)] = (one_image.data[size_t(c * plane + i)] * pre.std[size_t(c)] + pre.mean[size_t(c)]) / pre.scale;
    // The 1st and 99th percentiles (by rank) become 0 and 255: a few extreme pixels, which the
    // unclipped ascent makes, would otherwise leave the rest of the image one flat grey.
    std::vector<float> sorted = pixels;
    const size_t last = sorted.size() - 1;
    const auto rank_lo = static_cast<size_t>(std::floor(0.01 * double(last))), rank_hi = static_cast<size_t>(std::ceil(0.99 * double(last)));
    std::nth_element(sorted.begin(), sorted.begin() + long(rank_lo), sorted.end());
    const float low = sorted[rank_lo];
    std::nth_element(sorted.begin(), sorted.begin() + long(rank_hi), sorted.end());
    const float range = sorted[rank_hi] - low;
    image img;
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.channels = static_cast<int>(channels);
    img.pixels.resize(size_t(one_image.size()));
    for (int64_t c = 0; c < channels; ++c) {
        const int64_t rgb = channels == 3 && preprocessing.bgr ? 2 - c : c; // the model's channel c is this RGB channel
        for (int64_t i = 0; i < plane; ++i) {
            const float p = pixels[size_t(c * plane + i)];
            // A flat image has no contrast to stretch: show its pixel value as it is.
            const float v = range > 0 ? (p - low) / range * 255.0f : std::clamp(p, 0.0f, 255.0f);
            img.pixels[size_t(i * channels + rgb)] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f)));
        }
    }
    return img;
}

} // namespace deepinside
