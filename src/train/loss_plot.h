// loss.svg: training and validation loss against the step, drawn from metrics records. Plain
// SVG, so any browser shows it and nothing is installed for it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tandem::train {

std::string render_loss_svg(const std::vector<nlohmann::json>& records);

}  // namespace tandem::train
