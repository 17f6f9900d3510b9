// A line chart in SVG: axes with a few labelled ticks, the training loss as a polyline, the
// validation loss as a polyline with markers.
#include "train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace tandem::train {

namespace {

struct Series {
    std::vector<double> steps, values;
};

std::string number(double x) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", x);
    return text;
}

}  // namespace

std::string render_loss_svg(const std::vector<nlohmann::json>& records) {
    return render_metrics_svg(records, "tandem: loss",
                              {{"loss", "train loss", "#1f77b4"}, {"val_loss", "val loss", "#d62728", true}});
}

std::string render_metrics_svg(const std::vector<nlohmann::json>& records, const std::string& title,
                               const std::vector<PlotSeries>& series) {
    std::vector<Series> lines(series.size());
    for (const auto& r : records) {
        if (!r.contains("step")) continue;
        const double step = r["step"].get<double>();
        for (size_t k = 0; k < series.size(); ++k) {
            const std::string& key = series[k].key;
            if (r.contains(key) && r[key].is_number() && std::isfinite(r[key].get<double>()))
                lines[k].steps.push_back(step), lines[k].values.push_back(r[key].get<double>());
        }
    }
    const int width = 720, height = 420, left = 60, right = 20, top = 30, bottom = 45;
    const int plot_w = width - left - right, plot_h = height - top - bottom;

    double x_max = 1, y_min = INFINITY, y_max = -INFINITY;
    for (const Series& s : lines)
        for (size_t i = 0; i < s.steps.size(); ++i) {
            x_max = std::max(x_max, s.steps[i]);
            y_min = std::min(y_min, s.values[i]);
            y_max = std::max(y_max, s.values[i]);
        }
    if (!std::isfinite(y_min)) y_min = 0, y_max = 1;
    if (y_max - y_min < 1e-9) y_max = y_min + 1;
    const auto px = [&](double step) { return left + plot_w * step / x_max; };
    const auto py = [&](double v) { return top + plot_h * (1 - (v - y_min) / (y_max - y_min)); };

    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
        << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        << "<text x=\"" << left << "\" y=\"18\" font-size=\"14\">" << title << "</text>\n";
    // Axes and ticks.
    svg << "<line x1=\"" << left << "\" y1=\"" << top + plot_h << "\" x2=\"" << left + plot_w << "\" y2=\""
        << top + plot_h << "\" stroke=\"black\"/>\n"
        << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << top + plot_h
        << "\" stroke=\"black\"/>\n";
    for (int i = 0; i <= 4; ++i) {
        const double v = y_min + (y_max - y_min) * i / 4, y = py(v);
        const double s = x_max * i / 4, x = px(s);
        svg << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + plot_w << "\" y2=\"" << y
            << "\" stroke=\"#eee\"/>\n"
            << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << number(v) << "</text>\n"
            << "<text x=\"" << x << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">"
            << number(s) << "</text>\n";
    }
    svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 8 << "\" text-anchor=\"middle\">step</text>\n";

    const auto polyline = [&](const Series& s, const char* color) {
        if (s.steps.empty()) return;
        svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
        for (size_t i = 0; i < s.steps.size(); ++i) svg << px(s.steps[i]) << ',' << py(s.values[i]) << ' ';
        svg << "\"/>\n";
    };
    for (size_t k = 0; k < series.size(); ++k) {
        polyline(lines[k], series[k].color.c_str());
        if (series[k].has_markers)
            for (size_t i = 0; i < lines[k].steps.size(); ++i)
                svg << "<circle cx=\"" << px(lines[k].steps[i]) << "\" cy=\"" << py(lines[k].values[i])
                    << "\" r=\"3\" fill=\"" << series[k].color << "\"/>\n";
    }
    // Legend, right-aligned, one entry per series.
    for (size_t k = 0; k < series.size(); ++k)
        svg << "<text x=\"" << left + plot_w - 10 - 90 * int(series.size() - 1 - k) << "\" y=\"" << top + 14
            << "\" text-anchor=\"end\" fill=\"" << series[k].color << "\">" << series[k].label << "</text>\n";
    svg << "</svg>\n";
    return svg.str();
}

}  // namespace tandem::train
