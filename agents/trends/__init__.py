"""Entity trends (issue 23): ``core`` counts mentions per hour (exact for the heavy hitters,
a count-min sketch for the tail) and scores the last hour against the previous 72; ``agent``
publishes the trending entities on news.trends and raises ``trend`` alerts."""
