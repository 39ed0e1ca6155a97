// robots.txt (RFC 9309): the rules of the group that names our user agent (else "*"),
// Allow/Disallow with '*' and '$', the longest matching rule deciding (Allow on a tie).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crawler {

class Robots {
 public:
  // Everything allowed (no robots.txt, or a 4xx for it).
  static Robots allow_all() { return Robots{}; }
  // Nothing allowed (robots.txt unreachable: RFC 9309 2.3.1.4).
  static Robots disallow_all();
  // The rules in `text` that apply to `user_agent` (its product token: up to the first '/'
  // or space, compared without case).
  static Robots parse(std::string_view text, std::string_view user_agent);

  // path_and_query: the URL's target, "/a/b?c".
  bool allowed(std::string_view path_and_query) const;
  std::size_t rules() const noexcept { return rules_.size(); }

 private:
  struct Rule {
    std::string pattern;
    bool allow;
  };
  std::vector<Rule> rules_;
};

// Does the robots.txt pattern (with '*' and a trailing '$') match the start of path?
bool robots_match(std::string_view pattern, std::string_view path);

}  // namespace crawler
