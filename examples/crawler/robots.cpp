#include "robots.hpp"

#include <cctype>

namespace crawler {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Robots Robots::disallow_all() {
  Robots r;
  r.rules_.push_back({"/", false});
  return r;
}

bool robots_match(std::string_view pattern, std::string_view path) {
  bool anchored = !pattern.empty() && pattern.back() == '$';
  if (anchored) pattern.remove_suffix(1);
  // Greedy-free wildcard matching with backtracking on the last '*' seen.
  std::size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (p < pattern.size() || (anchored && s < path.size())) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && s < path.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos && mark < path.size()) {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  return true;  // the pattern is used up: a prefix match (or a full one when anchored)
}

Robots Robots::parse(std::string_view text, std::string_view user_agent) {
  std::string token = lower(user_agent.substr(0, user_agent.find_first_of("/ ")));
  // Groups: a run of user-agent lines, then the rules that follow.
  struct Group {
    std::vector<std::string> agents;
    std::vector<Rule> rules;
  };
  std::vector<Group> groups;
  bool in_agents = false;
  while (!text.empty()) {
    std::size_t nl = text.find_first_of("\r\n");
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    line = trim(line.substr(0, line.find('#')));
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (key == "user-agent") {
      if (!in_agents) groups.emplace_back();
      in_agents = true;
      groups.back().agents.push_back(lower(value));
    } else if (key == "allow" || key == "disallow") {
      in_agents = false;
      if (groups.empty()) continue;  // rules before any user-agent line belong to no group
      if (value.empty()) continue;   // "Disallow:" (nothing) allows everything
      groups.back().rules.push_back({std::string(value), key == "allow"});
    } else {
      in_agents = false;  // sitemap, crawl-delay, ...: not ours to act on
    }
  }
  Robots out;
  bool specific = false;
  for (const auto& g : groups)
    for (const auto& a : g.agents)
      if (a != "*" && !a.empty() && !token.empty() && token.find(a) != std::string::npos) specific = true;
  for (const auto& g : groups) {
    bool match = false;
    for (const auto& a : g.agents) {
      if (specific ? (a != "*" && !a.empty() && token.find(a) != std::string::npos) : a == "*") match = true;
    }
    if (match) out.rules_.insert(out.rules_.end(), g.rules.begin(), g.rules.end());
  }
  return out;
}

bool Robots::allowed(std::string_view path) const {
  if (path == "/robots.txt") return true;
  std::size_t best = 0;
  bool verdict = true;
  bool any = false;
  for (const auto& r : rules_) {
    if (!robots_match(r.pattern, path)) continue;
    std::size_t len = r.pattern.size();
    if (!any || len > best || (len == best && r.allow)) {
      best = len;
      verdict = r.allow;
      any = true;
    }
  }
  return verdict;
}

}  // namespace crawler
