// Saliency maps made readable: reducing a signal to a map, choosing the value at full colour,
// colormaps, overlays and captioned panels. The one home of the colormaps (io.hpp's first heatmap and
// overlay are defined here too).
#include "io/raster.hpp"

#include <deepinside/display.hpp>
#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace deepinside {

namespace {

// ---- Colormaps --------------------------------------------------------------------------------

struct colormap_node {
    float position, r, g, b;
};
struct rgb {
    float r, g, b;
};

/// matplotlib's "inferno" (Stéfan van der Walt and Nathaniel Smith, CC0), sampled at 17 of its
/// 256 published entries (indices 0, 16, ..., 240, 255; position = index / 255) and interpolated
/// linearly in between. The sampling keeps its monotonically increasing lightness; heatmap(map) has
/// always drawn with it, so it stays as it is.
constexpr std::array<colormap_node, 17> inferno{{
    {0.0f / 255, 0.001462f, 0.000466f, 0.013866f},
    {16.0f / 255, 0.042253f, 0.028139f, 0.141141f},
    {32.0f / 255, 0.129285f, 0.047293f, 0.290788f},
    {48.0f / 255, 0.238273f, 0.036621f, 0.396353f},
    {64.0f / 255, 0.341500f, 0.062325f, 0.429425f},
    {80.0f / 255, 0.441207f, 0.099338f, 0.431594f},
    {96.0f / 255, 0.540920f, 0.134729f, 0.415123f},
    {112.0f / 255, 0.640135f, 0.171438f, 0.381065f},
    {128.0f / 255, 0.735683f, 0.215906f, 0.330245f},
    {144.0f / 255, 0.822386f, 0.275197f, 0.266085f},
    {160.0f / 255, 0.894305f, 0.353399f, 0.193584f},
    {176.0f / 255, 0.946965f, 0.449191f, 0.115272f},
    {192.0f / 255, 0.978422f, 0.557937f, 0.034931f},
    {208.0f / 255, 0.987874f, 0.675267f, 0.065257f},
    {224.0f / 255, 0.974638f, 0.797692f, 0.206332f},
    {240.0f / 255, 0.947594f, 0.917399f, 0.410665f},
    {255.0f / 255, 0.988362f, 0.998364f, 0.644924f},
}};

/// matplotlib's "viridis" (Eric Firing, Nathaniel Smith, Stéfan van der Walt, CC0): its 256 entries,
/// entry i at position i / 255.
constexpr std::array<rgb, 256> viridis{{
    {0.267004, 0.004874, 0.329415}, {0.268510, 0.009605, 0.335427}, {0.269944, 0.014625, 0.341379},
    {0.271305, 0.019942, 0.347269}, {0.272594, 0.025563, 0.353093}, {0.273809, 0.031497, 0.358853},
    {0.274952, 0.037752, 0.364543}, {0.276022, 0.044167, 0.370164}, {0.277018, 0.050344, 0.375715},
    {0.277941, 0.056324, 0.381191}, {0.278791, 0.062145, 0.386592}, {0.279566, 0.067836, 0.391917},
    {0.280267, 0.073417, 0.397163}, {0.280894, 0.078907, 0.402329}, {0.281446, 0.084320, 0.407414},
    {0.281924, 0.089666, 0.412415}, {0.282327, 0.094955, 0.417331}, {0.282656, 0.100196, 0.422160},
    {0.282910, 0.105393, 0.426902}, {0.283091, 0.110553, 0.431554}, {0.283197, 0.115680, 0.436115},
    {0.283229, 0.120777, 0.440584}, {0.283187, 0.125848, 0.444960}, {0.283072, 0.130895, 0.449241},
    {0.282884, 0.135920, 0.453427}, {0.282623, 0.140926, 0.457517}, {0.282290, 0.145912, 0.461510},
    {0.281887, 0.150881, 0.465405}, {0.281412, 0.155834, 0.469201}, {0.280868, 0.160771, 0.472899},
    {0.280255, 0.165693, 0.476498}, {0.279574, 0.170599, 0.479997}, {0.278826, 0.175490, 0.483397},
    {0.278012, 0.180367, 0.486697}, {0.277134, 0.185228, 0.489898}, {0.276194, 0.190074, 0.493001},
    {0.275191, 0.194905, 0.496005}, {0.274128, 0.199721, 0.498911}, {0.273006, 0.204520, 0.501721},
    {0.271828, 0.209303, 0.504434}, {0.270595, 0.214069, 0.507052}, {0.269308, 0.218818, 0.509577},
    {0.267968, 0.223549, 0.512008}, {0.266580, 0.228262, 0.514349}, {0.265145, 0.232956, 0.516599},
    {0.263663, 0.237631, 0.518762}, {0.262138, 0.242286, 0.520837}, {0.260571, 0.246922, 0.522828},
    {0.258965, 0.251537, 0.524736}, {0.257322, 0.256130, 0.526563}, {0.255645, 0.260703, 0.528312},
    {0.253935, 0.265254, 0.529983}, {0.252194, 0.269783, 0.531579}, {0.250425, 0.274290, 0.533103},
    {0.248629, 0.278775, 0.534556}, {0.246811, 0.283237, 0.535941}, {0.244972, 0.287675, 0.537260},
    {0.243113, 0.292092, 0.538516}, {0.241237, 0.296485, 0.539709}, {0.239346, 0.300855, 0.540844},
    {0.237441, 0.305202, 0.541921}, {0.235526, 0.309527, 0.542944}, {0.233603, 0.313828, 0.543914},
    {0.231674, 0.318106, 0.544834}, {0.229739, 0.322361, 0.545706}, {0.227802, 0.326594, 0.546532},
    {0.225863, 0.330805, 0.547314}, {0.223925, 0.334994, 0.548053}, {0.221989, 0.339161, 0.548752},
    {0.220057, 0.343307, 0.549413}, {0.218130, 0.347432, 0.550038}, {0.216210, 0.351535, 0.550627},
    {0.214298, 0.355619, 0.551184}, {0.212395, 0.359683, 0.551710}, {0.210503, 0.363727, 0.552206},
    {0.208623, 0.367752, 0.552675}, {0.206756, 0.371758, 0.553117}, {0.204903, 0.375746, 0.553533},
    {0.203063, 0.379716, 0.553925}, {0.201239, 0.383670, 0.554294}, {0.199430, 0.387607, 0.554642},
    {0.197636, 0.391528, 0.554969}, {0.195860, 0.395433, 0.555276}, {0.194100, 0.399323, 0.555565},
    {0.192357, 0.403199, 0.555836}, {0.190631, 0.407061, 0.556089}, {0.188923, 0.410910, 0.556326},
    {0.187231, 0.414746, 0.556547}, {0.185556, 0.418570, 0.556753}, {0.183898, 0.422383, 0.556944},
    {0.182256, 0.426184, 0.557120}, {0.180629, 0.429975, 0.557282}, {0.179019, 0.433756, 0.557430},
    {0.177423, 0.437527, 0.557565}, {0.175841, 0.441290, 0.557685}, {0.174274, 0.445044, 0.557792},
    {0.172719, 0.448791, 0.557885}, {0.171176, 0.452530, 0.557965}, {0.169646, 0.456262, 0.558030},
    {0.168126, 0.459988, 0.558082}, {0.166617, 0.463708, 0.558119}, {0.165117, 0.467423, 0.558141},
    {0.163625, 0.471133, 0.558148}, {0.162142, 0.474838, 0.558140}, {0.160665, 0.478540, 0.558115},
    {0.159194, 0.482237, 0.558073}, {0.157729, 0.485932, 0.558013}, {0.156270, 0.489624, 0.557936},
    {0.154815, 0.493313, 0.557840}, {0.153364, 0.497000, 0.557724}, {0.151918, 0.500685, 0.557587},
    {0.150476, 0.504369, 0.557430}, {0.149039, 0.508051, 0.557250}, {0.147607, 0.511733, 0.557049},
    {0.146180, 0.515413, 0.556823}, {0.144759, 0.519093, 0.556572}, {0.143343, 0.522773, 0.556295},
    {0.141935, 0.526453, 0.555991}, {0.140536, 0.530132, 0.555659}, {0.139147, 0.533812, 0.555298},
    {0.137770, 0.537492, 0.554906}, {0.136408, 0.541173, 0.554483}, {0.135066, 0.544853, 0.554029},
    {0.133743, 0.548535, 0.553541}, {0.132444, 0.552216, 0.553018}, {0.131172, 0.555899, 0.552459},
    {0.129933, 0.559582, 0.551864}, {0.128729, 0.563265, 0.551229}, {0.127568, 0.566949, 0.550556},
    {0.126453, 0.570633, 0.549841}, {0.125394, 0.574318, 0.549086}, {0.124395, 0.578002, 0.548287},
    {0.123463, 0.581687, 0.547445}, {0.122606, 0.585371, 0.546557}, {0.121831, 0.589055, 0.545623},
    {0.121148, 0.592739, 0.544641}, {0.120565, 0.596422, 0.543611}, {0.120092, 0.600104, 0.542530},
    {0.119738, 0.603785, 0.541400}, {0.119512, 0.607464, 0.540218}, {0.119423, 0.611141, 0.538982},
    {0.119483, 0.614817, 0.537692}, {0.119699, 0.618490, 0.536347}, {0.120081, 0.622161, 0.534946},
    {0.120638, 0.625828, 0.533488}, {0.121380, 0.629492, 0.531973}, {0.122312, 0.633153, 0.530398},
    {0.123444, 0.636809, 0.528763}, {0.124780, 0.640461, 0.527068}, {0.126326, 0.644107, 0.525311},
    {0.128087, 0.647749, 0.523491}, {0.130067, 0.651384, 0.521608}, {0.132268, 0.655014, 0.519661},
    {0.134692, 0.658636, 0.517649}, {0.137339, 0.662252, 0.515571}, {0.140210, 0.665859, 0.513427},
    {0.143303, 0.669459, 0.511215}, {0.146616, 0.673050, 0.508936}, {0.150148, 0.676631, 0.506589},
    {0.153894, 0.680203, 0.504172}, {0.157851, 0.683765, 0.501686}, {0.162016, 0.687316, 0.499129},
    {0.166383, 0.690856, 0.496502}, {0.170948, 0.694384, 0.493803}, {0.175707, 0.697900, 0.491033},
    {0.180653, 0.701402, 0.488189}, {0.185783, 0.704891, 0.485273}, {0.191090, 0.708366, 0.482284},
    {0.196571, 0.711827, 0.479221}, {0.202219, 0.715272, 0.476084}, {0.208030, 0.718701, 0.472873},
    {0.214000, 0.722114, 0.469588}, {0.220124, 0.725509, 0.466226}, {0.226397, 0.728888, 0.462789},
    {0.232815, 0.732247, 0.459277}, {0.239374, 0.735588, 0.455688}, {0.246070, 0.738910, 0.452024},
    {0.252899, 0.742211, 0.448284}, {0.259857, 0.745492, 0.444467}, {0.266941, 0.748751, 0.440573},
    {0.274149, 0.751988, 0.436601}, {0.281477, 0.755203, 0.432552}, {0.288921, 0.758394, 0.428426},
    {0.296479, 0.761561, 0.424223}, {0.304148, 0.764704, 0.419943}, {0.311925, 0.767822, 0.415586},
    {0.319809, 0.770914, 0.411152}, {0.327796, 0.773980, 0.406640}, {0.335885, 0.777018, 0.402049},
    {0.344074, 0.780029, 0.397381}, {0.352360, 0.783011, 0.392636}, {0.360741, 0.785964, 0.387814},
    {0.369214, 0.788888, 0.382914}, {0.377779, 0.791781, 0.377939}, {0.386433, 0.794644, 0.372886},
    {0.395174, 0.797475, 0.367757}, {0.404001, 0.800275, 0.362552}, {0.412913, 0.803041, 0.357269},
    {0.421908, 0.805774, 0.351910}, {0.430983, 0.808473, 0.346476}, {0.440137, 0.811138, 0.340967},
    {0.449368, 0.813768, 0.335384}, {0.458674, 0.816363, 0.329727}, {0.468053, 0.818921, 0.323998},
    {0.477504, 0.821444, 0.318195}, {0.487026, 0.823929, 0.312321}, {0.496615, 0.826376, 0.306377},
    {0.506271, 0.828786, 0.300362}, {0.515992, 0.831158, 0.294279}, {0.525776, 0.833491, 0.288127},
    {0.535621, 0.835785, 0.281908}, {0.545524, 0.838039, 0.275626}, {0.555484, 0.840254, 0.269281},
    {0.565498, 0.842430, 0.262877}, {0.575563, 0.844566, 0.256415}, {0.585678, 0.846661, 0.249897},
    {0.595839, 0.848717, 0.243329}, {0.606045, 0.850733, 0.236712}, {0.616293, 0.852709, 0.230052},
    {0.626579, 0.854645, 0.223353}, {0.636902, 0.856542, 0.216620}, {0.647257, 0.858400, 0.209861},
    {0.657642, 0.860219, 0.203082}, {0.668054, 0.861999, 0.196293}, {0.678489, 0.863742, 0.189503},
    {0.688944, 0.865448, 0.182725}, {0.699415, 0.867117, 0.175971}, {0.709898, 0.868751, 0.169257},
    {0.720391, 0.870350, 0.162603}, {0.730889, 0.871916, 0.156029}, {0.741388, 0.873449, 0.149561},
    {0.751884, 0.874951, 0.143228}, {0.762373, 0.876424, 0.137064}, {0.772852, 0.877868, 0.131109},
    {0.783315, 0.879285, 0.125405}, {0.793760, 0.880678, 0.120005}, {0.804182, 0.882046, 0.114965},
    {0.814576, 0.883393, 0.110347}, {0.824940, 0.884720, 0.106217}, {0.835270, 0.886029, 0.102646},
    {0.845561, 0.887322, 0.099702}, {0.855810, 0.888601, 0.097452}, {0.866013, 0.889868, 0.095953},
    {0.876168, 0.891125, 0.095250}, {0.886271, 0.892374, 0.095374}, {0.896320, 0.893616, 0.096335},
    {0.906311, 0.894855, 0.098125}, {0.916242, 0.896091, 0.100717}, {0.926106, 0.897330, 0.104071},
    {0.935904, 0.898570, 0.108131}, {0.945636, 0.899815, 0.112838}, {0.955300, 0.901065, 0.118128},
    {0.964894, 0.902323, 0.123941}, {0.974417, 0.903590, 0.130215}, {0.983868, 0.904867, 0.136897},
    {0.993248, 0.906157, 0.143936},
}};

// Kenneth Moreland, "Diverging Color Maps for Scientific Visualization" (2009): interpolation in
// Msh, a polar form of CIELAB, between a blue and a red of equal lightness, through a white-grey
// whose M is max(M_cool, M_warm, 88). sRGB with the D65 white throughout, as in the paper.
namespace moreland {

struct msh {
    double m, s, h;
};

constexpr double white_x = 0.9505, white_y = 1.0, white_z = 1.089;

double to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double to_srgb(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1 / 2.4) - 0.055; }
double lab_f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116; }
double lab_f_inverse(double f) { return f > 0.20689 ? f * f * f : (f - 16.0 / 116) / 7.787; }

msh from_srgb8(int r8, int g8, int b8) {
    const double r = to_linear(r8 / 255.0), g = to_linear(g8 / 255.0), b = to_linear(b8 / 255.0);
    const double x = 0.4124 * r + 0.3576 * g + 0.1805 * b;
    const double y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    const double z = 0.0193 * r + 0.1192 * g + 0.9505 * b;
    const double fx = lab_f(x / white_x), fy = lab_f(y / white_y), fz = lab_f(z / white_z);
    const double l = 116 * fy - 16, a = 500 * (fx - fy), bb = 200 * (fy - fz);
    const double m = std::sqrt(l * l + a * a + bb * bb);
    return {m, std::acos(l / m), std::atan2(bb, a)};
}

rgb to_srgb(const msh& c) {
    const double l = c.m * std::cos(c.s), a = c.m * std::sin(c.s) * std::cos(c.h),
                 bb = c.m * std::sin(c.s) * std::sin(c.h);
    const double fy = (l + 16) / 116, fx = fy + a / 500, fz = fy - bb / 200;
    const double x = white_x * lab_f_inverse(fx), y = white_y * lab_f_inverse(fy), z = white_z * lab_f_inverse(fz);
    const double r = 3.2406 * x - 1.5372 * y - 0.4986 * z;
    const double g = -0.9689 * x + 1.8758 * y + 0.0415 * z;
    const double b = 0.0557 * x - 0.2040 * y + 1.0570 * z;
    const auto clamp01 = [](double v) { return float(std::clamp(v, 0.0, 1.0)); };
    return {clamp01(to_srgb(r)), clamp01(to_srgb(g)), clamp01(to_srgb(b))};
}

/// The hue an unsaturated end takes so that the path from the saturated colour `c` spins smoothly.
double adjusted_hue(const msh& c, double m_unsaturated) {
    if (c.m >= m_unsaturated) return c.h;
    const double spin = c.s * std::sqrt(m_unsaturated * m_unsaturated - c.m * c.m) / (c.m * std::sin(c.s));
    return c.h > -M_PI / 3 ? c.h + spin : c.h - spin;
}

rgb interpolate(msh a, msh b, double t) {
    if (a.s > 0.05 && b.s > 0.05 && std::fabs(a.h - b.h) > M_PI / 3) {
        const double m_mid = std::max({a.m, b.m, 88.0});
        if (t < 0.5) {
            b = {m_mid, 0, 0};
            t = 2 * t;
        } else {
            a = {m_mid, 0, 0};
            t = 2 * t - 1;
        }
    }
    if (a.s < 0.05 && b.s > 0.05)
        a.h = adjusted_hue(b, a.m);
    else if (b.s < 0.05 && a.s > 0.05)
        b.h = adjusted_hue(a, b.m);
    return to_srgb({(1 - t) * a.m + t * b.m, (1 - t) * a.s + t * b.s, (1 - t) * a.h + t * b.h});
}

/// The 33 nodes of Moreland's published table (and matplotlib's "coolwarm").
std::vector<colormap_node> coolwarm_nodes() {
    const msh cool = from_srgb8(59, 76, 192), warm = from_srgb8(180, 4, 38);
    std::vector<colormap_node> nodes;
    for (int i = 0; i <= 32; ++i) {
        const rgb c = interpolate(cool, warm, i / 32.0);
        nodes.push_back({float(i) / 32, c.r, c.g, c.b});
    }
    return nodes;
}

} // namespace moreland

const char* const colormap_choices = "inferno, viridis, gray, coolwarm";

/// The nodes of the colormap `name`, positions rising from 0 to 1.
std::vector<colormap_node> colormap_nodes(const std::string& name) {
    if (name == "inferno") return {inferno.begin(), inferno.end()};
    if (name == "viridis") {
        std::vector<colormap_node> nodes;
        for (size_t i = 0; i < viridis.size(); ++i)
            nodes.push_back({float(i) / 255, viridis[i].r, viridis[i].g, viridis[i].b});
        return nodes;
    }
    if (name == "gray") return {{0.0f, 0.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f, 1.0f}};
    if (name == "coolwarm") return moreland::coolwarm_nodes();
    throw input_error(fmt::format("heatmap: unknown colormap '{}'; choose one of {}", name, colormap_choices));
}

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }

/// Writes the RGB colour of `v` in [0, 1]: linear between the two nodes around it.
void colour_of(const std::vector<colormap_node>& nodes, float v, uint8_t* dst) {
    // The first node from the second on whose position is not below v (the last when none is).
    const auto above = std::lower_bound(nodes.begin() + 1, nodes.end() - 1, v,
                                        [](const colormap_node& n, float x) { return n.position < x; });
    const colormap_node& a = *(above - 1);
    const colormap_node& b = *above;
    const float t = std::clamp((v - a.position) / (b.position - a.position), 0.0f, 1.0f);
    dst[0] = to_byte(a.r + t * (b.r - a.r));
    dst[1] = to_byte(a.g + t * (b.g - a.g));
    dst[2] = to_byte(a.b + t * (b.b - a.b));
}

void check_map(const tensor& map, const char* what) {
    if (map.shape.size() != 2)
        throw input_error(fmt::format("{}: saliency map has shape {}, expected [H, W]", what, to_string(map.shape)));
    if (map.shape[0] <= 0 || map.shape[1] <= 0 || map.shape[0] > std::numeric_limits<int>::max() ||
        map.shape[1] > std::numeric_limits<int>::max())
        throw input_error(
            fmt::format("{}: saliency map has shape {}, expected positive sizes", what, to_string(map.shape)));
    if (element_count(map.shape) != map.size())
        throw input_error(
            fmt::format("{}: saliency map of shape {} holds {} values", what, to_string(map.shape), map.size()));
    for (float v : map.data)
        if (!std::isfinite(v)) throw input_error(fmt::format("{}: saliency map contains NaN or infinity", what));
}

void check_alpha(float alpha, const char* what) {
    if (!(alpha >= 0.0f && alpha <= 1.0f)) throw input_error(fmt::format("{}: alpha {} is not in [0, 1]", what, alpha));
}

/// The value at index `i` of `img` as RGB, a grey pixel repeated.
uint8_t channel_of(const image& img, size_t pixel, size_t c) {
    return img.pixels[pixel * size_t(img.channels) + (img.channels == 1 ? 0 : c)];
}

// ---- Captions ---------------------------------------------------------------------------------

constexpr int glyph_width = 5, glyph_height = 7, glyph_advance = 6;
constexpr int caption_margin_top = 3, caption_band = caption_margin_top + glyph_height + 2;

/// A 5x7 glyph: seven rows, top first, the leftmost pixel in bit 4.
struct glyph {
    char c;
    std::array<uint8_t, glyph_height> rows;
};

// In the style of the classic 5x7 character-ROM fonts; lower-case letters with descenders are
// raised to fit the seven rows.
constexpr std::array<glyph, 47> font{{
    {'a', {0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111}},
    {'b', {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110}},
    {'c', {0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110}},
    {'d', {0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111}},
    {'e', {0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110}},
    {'f', {0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000}},
    {'g', {0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110}},
    {'h', {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001}},
    {'i', {0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'j', {0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100}},
    {'k', {0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010}},
    {'l', {0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'m', {0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001}},
    {'n', {0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001}},
    {'o', {0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110}},
    {'p', {0b00000, 0b00000, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000}},
    {'q', {0b00000, 0b00000, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001}},
    {'r', {0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000}},
    {'s', {0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110}},
    {'t', {0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110}},
    {'u', {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101}},
    {'v', {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100}},
    {'w', {0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010}},
    {'x', {0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001}},
    {'y', {0b00000, 0b00000, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110}},
    {'z', {0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111}},
    {'0', {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110}},
    {'1', {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110}},
    {'2', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111}},
    {'3', {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110}},
    {'4', {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010}},
    {'5', {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110}},
    {'6', {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110}},
    {'7', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000}},
    {'8', {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110}},
    {'9', {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100}},
    {' ', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000}},
    {'.', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100}},
    {'-', {0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000}},
    {'_', {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111}},
    {':', {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000}},
    {'(', {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010}},
    {')', {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000}},
    {',', {0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000}},
    {'/', {0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000}},
    {';', {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000}},
    {'\0', {0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111}}, // the box for anything else
}};

const glyph& glyph_of(char c) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    for (const glyph& g : font)
        if (g.c == c && c != '\0') return g;
    return font.back();
}

/// The characters of `text` to draw: one per byte, except that a multi-byte UTF-8 character is one
/// (its continuation bytes are dropped), so it shows as one box.
std::string drawn_characters(const std::string& text) {
    std::string chars;
    for (char c : text)
        if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) chars += c;
    return chars;
}

int text_width(const std::string& chars) { return chars.empty() ? 0 : int(chars.size()) * glyph_advance - 1; }

/// Draws `chars` in black on the RGB `canvas` with the top-left corner of the first glyph at (x, y).
void draw_text(image& canvas, const std::string& chars, int x, int y) {
    for (char c : chars) {
        const glyph& g = glyph_of(c);
        for (int row = 0; row < glyph_height; ++row)
            for (int col = 0; col < glyph_width; ++col)
                if (g.rows[size_t(row)] & (1 << (glyph_width - 1 - col))) {
                    uint8_t* px = canvas.pixels.data() + (size_t(y + row) * size_t(canvas.width) + size_t(x + col)) * 3;
                    px[0] = px[1] = px[2] = 0;
                }
        x += glyph_advance;
    }
}

} // namespace

// ---- Maps -------------------------------------------------------------------------------------

map_reduction parse_map_reduction(const std::string& name) {
    for (map_reduction r :
         {map_reduction::max_abs, map_reduction::sum_abs, map_reduction::signed_sum, map_reduction::positive})
        if (name == to_string(r)) return r;
    throw input_error(
        fmt::format("map reduction '{}' is unknown; choose one of max-abs, sum-abs, signed, positive", name));
}

const char* to_string(map_reduction r) {
    switch (r) {
    case map_reduction::max_abs:
        return "max-abs";
    case map_reduction::sum_abs:
        return "sum-abs";
    case map_reduction::signed_sum:
        return "signed";
    case map_reduction::positive:
        return "positive";
    }
    return "unknown";
}

tensor reduce_map(const tensor& signal, map_reduction r) {
    if (signal.shape.size() != 4)
        throw input_error(
            fmt::format("reduce_map: signal has shape {}, expected [N, C, H, W]", to_string(signal.shape)));
    if (element_count(signal.shape) != signal.size())
        throw input_error(
            fmt::format("reduce_map: signal of shape {} holds {} values", to_string(signal.shape), signal.size()));
    require_finite(signal, "reduce_map: signal");
    if (r == map_reduction::max_abs) return saliency_map(signal);

    const int64_t n = signal.shape[0], c = signal.shape[1], hw = signal.shape[2] * signal.shape[3];
    tensor map({n, signal.shape[2], signal.shape[3]});
    std::vector<double> sum(static_cast<size_t>(hw));
    for (int64_t b = 0; b < n; ++b) {
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int64_t k = 0; k < c; ++k) {
            const float* plane = signal.data.data() + (b * c + k) * hw;
            for (int64_t i = 0; i < hw; ++i)
                sum[size_t(i)] += r == map_reduction::sum_abs ? std::fabs(plane[i]) : plane[i];
        }
        float* out = map.data.data() + b * hw;
        for (int64_t i = 0; i < hw; ++i)
            out[i] = float(r == map_reduction::positive ? std::max(sum[size_t(i)], 0.0) : sum[size_t(i)]);
    }
    return map;
}

float display_scale(const tensor& map, float percentile) {
    if (!(percentile > 0.0f && percentile <= 100.0f))
        throw input_error(fmt::format("display_scale: percentile {} is not in (0, 100]", percentile));
    if (map.data.empty())
        throw input_error(fmt::format("display_scale: the map of shape {} is empty", to_string(map.shape)));
    if (element_count(map.shape) != map.size())
        throw input_error(
            fmt::format("display_scale: map of shape {} holds {} values", to_string(map.shape), map.size()));
    require_finite(map, "display_scale: map");
    std::vector<float> magnitudes(map.data.size());
    std::transform(map.data.begin(), map.data.end(), magnitudes.begin(), [](float v) { return std::fabs(v); });
    // numpy.percentile's default ("linear"): the order statistic at rank p/100 * (n - 1), interpolated.
    const double rank = double(percentile) / 100.0 * double(magnitudes.size() - 1);
    const auto below = size_t(std::floor(rank));
    const double fraction = rank - double(below);
    std::nth_element(magnitudes.begin(), magnitudes.begin() + long(below), magnitudes.end());
    const double a = magnitudes[below];
    if (fraction == 0.0 || below + 1 >= magnitudes.size()) return float(a);
    const double b = *std::min_element(magnitudes.begin() + long(below) + 1, magnitudes.end());
    return float(a + fraction * (b - a));
}

// ---- Colouring --------------------------------------------------------------------------------

image heatmap(const tensor& map, const heatmap_style& style) {
    check_map(map, "heatmap");
    if (!(std::isfinite(style.scale) && style.scale >= 0.0f))
        throw input_error(
            fmt::format("heatmap: scale {} is not a finite value >= 0 (0: the map's own maximum)", style.scale));
    const std::vector<colormap_node> nodes =
        colormap_nodes(style.colormap.empty() ? (style.is_signed ? "coolwarm" : "inferno") : style.colormap);
    float scale = style.scale;
    if (scale == 0.0f)
        for (float v : map.data) scale = std::max(scale, std::fabs(v));

    image dst{int(map.shape[1]), int(map.shape[0]), 3, std::vector<uint8_t>(map.data.size() * 3)};
    for (size_t i = 0; i < map.data.size(); ++i) {
        // An all-zero map has no scale: it shows the colour of 0.
        const float ratio = scale > 0.0f ? map.data[i] / scale : 0.0f;
        const float position = style.is_signed ? 0.5f + 0.5f * ratio : ratio;
        colour_of(nodes, std::clamp(position, 0.0f, 1.0f), dst.pixels.data() + 3 * i);
    }
    return dst;
}

image overlay_image(const image& base, const image& heat, float alpha) {
    io_detail::check_image_layout(base, "overlay_image: base");
    io_detail::check_image_layout(heat, "overlay_image: heat");
    check_alpha(alpha, "overlay_image");
    const bool resized = heat.width != base.width || heat.height != base.height;
    const image fitted = resized ? resize_image(heat, base.width, base.height,
                                                /*antialias=*/heat.width > base.width || heat.height > base.height)
                                 : heat;
    const size_t pixels = size_t(base.width) * size_t(base.height);
    image dst{base.width, base.height, 3, std::vector<uint8_t>(pixels * 3)};
    for (size_t i = 0; i < pixels; ++i)
        for (size_t c = 0; c < 3; ++c) {
            const float blend = (1.0f - alpha) * channel_of(base, i, c) + alpha * channel_of(fitted, i, c);
            dst.pixels[3 * i + c] = static_cast<uint8_t>(std::lround(std::clamp(blend, 0.0f, 255.0f)));
        }
    return dst;
}

image heatmap(const tensor& map) {
    check_map(map, "heatmap");
    // Divided by the largest value, negatives shown as 0: an inferno style whose scale is that value.
    float peak = 0.0f;
    for (float v : map.data) peak = std::max(peak, v);
    return heatmap(map, heatmap_style{"inferno", false, peak});
}

image overlay(const image& base, const tensor& map, float alpha) {
    io_detail::check_image_layout(base, "overlay");
    check_map(map, "overlay");
    check_alpha(alpha, "overlay");
    // The map (not its colours) is resized to the base, then coloured and blended.
    tensor resized({int64_t(base.height), int64_t(base.width)});
    io_detail::resize_bilinear(map.data.data(), map.shape[0], map.shape[1], resized.data.data(), base.height,
                               base.width);
    return overlay_image(base, heatmap(resized), alpha);
}

// ---- Layout -----------------------------------------------------------------------------------

image panel(const std::vector<image>& tiles, const std::vector<std::string>& captions, int gap) {
    if (tiles.empty()) throw input_error("panel: no tiles");
    if (!captions.empty() && captions.size() != tiles.size())
        throw input_error(
            fmt::format("panel: {} captions for {} tiles; give one per tile (\"\" for none) or none at all",
                        captions.size(), tiles.size()));
    if (gap < 0) throw input_error(fmt::format("panel: gap {} is negative", gap));
    for (size_t i = 0; i < tiles.size(); ++i) io_detail::check_image_layout(tiles[i], fmt::format("panel: tile {}", i));

    const int height = tiles[0].height;
    std::vector<image> scaled;
    std::vector<std::string> texts;
    std::vector<int> column_widths;
    int64_t width = 0;
    for (size_t i = 0; i < tiles.size(); ++i) {
        const image& t = tiles[i];
        const double scaled_width = std::max(1.0, std::round(double(t.width) * height / t.height));
        if (scaled_width > double(1 << 28))
            throw input_error(
                fmt::format("panel: tile {} would be {} pixels wide at height {}", i, scaled_width, height));
        const int w = int(scaled_width);
        scaled.push_back(t.height == height ? t : resize_image(t, w, height, /*antialias=*/t.height > height));
        texts.push_back(captions.empty() ? std::string() : drawn_characters(captions[i]));
        column_widths.push_back(std::max(scaled.back().width, text_width(texts.back())));
        width += column_widths.back() + (i > 0 ? gap : 0);
    }
    const bool any_caption = std::any_of(texts.begin(), texts.end(), [](const std::string& s) { return !s.empty(); });
    const int64_t total_height = int64_t(height) + (any_caption ? caption_band : 0);
    if (width * total_height > (int64_t{1} << 28))
        throw input_error(
            fmt::format("panel: the result would be {}x{} pixels, above {}", width, total_height, int64_t{1} << 28));

    image canvas{int(width), int(total_height), 3, std::vector<uint8_t>(size_t(width * total_height) * 3, 255)};
    int x = 0;
    for (size_t i = 0; i < scaled.size(); ++i) {
        const image& t = scaled[i];
        const int left = x + (column_widths[i] - t.width) / 2;
        for (int y = 0; y < height; ++y)
            for (int tx = 0; tx < t.width; ++tx)
                for (size_t c = 0; c < 3; ++c)
                    canvas.pixels[(size_t(y) * size_t(canvas.width) + size_t(left + tx)) * 3 + c] =
                        channel_of(t, size_t(y) * size_t(t.width) + size_t(tx), c);
        draw_text(canvas, texts[i], x + (column_widths[i] - text_width(texts[i])) / 2, height + caption_margin_top);
        x += column_widths[i] + gap;
    }
    return canvas;
}

image fit_within(const image& img, int max_side) {
    io_detail::check_image_layout(img, "fit_within");
    if (max_side <= 0)
        throw input_error(fmt::format("fit_within: the longest side allowed, {}, is not positive", max_side));
    const int longer = std::max(img.width, img.height);
    if (longer <= max_side) return img;
    const auto shrink = [&](int side) { return std::max(1, int(std::lround(double(side) * max_side / longer))); };
    if (img.width >= img.height) return resize_image(img, max_side, shrink(img.height), /*antialias=*/true);
    return resize_image(img, shrink(img.width), max_side, /*antialias=*/true);
}

} // namespace deepinside
