"""Progress of the long commands: a tqdm bar on stderr with the rate and the time left.

On stderr, so that ``--json`` output on stdout stays machine-readable. On a terminal the bar is
redrawn in place; into a pipe or a log it is written every ``PIPE_INTERVAL_S`` seconds and at the
end.
"""

import sys

PIPE_INTERVAL_S = 10.0


class Progress:
    """A bar over ``total`` units (environment steps by default) that also shows the last episode
    and evaluation returns. Use as a context manager, or call close()."""

    def __init__(self, total, desc, enabled=True, unit="step", own_eta=False):
        """``own_eta``: the caller gives the rate and the time left (``update``'s ``rate`` and
        ``eta_s``, e.g. a board's own step rate), so the bar shows those instead of tqdm's."""
        from tqdm import tqdm  # here: `microrl --help` need not import it

        tty = sys.stderr.isatty()
        self.last_episode = None
        self.last_eval = None
        self.unit = unit
        self._format_interval = tqdm.format_interval
        bar_format = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]" if own_eta else None
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled,
                         dynamic_ncols=tty, mininterval=0.2 if tty else PIPE_INTERVAL_S,
                         ascii=not tty, bar_format=bar_format)

    def update(self, done, episode_return=None, eval_return=None, rate=None, eta_s=None):
        """``done`` units so far; the returns, ``rate`` (units per second) and ``eta_s`` (seconds
        left), when given, join the bar's text."""
        if episode_return is not None:
            self.last_episode = episode_return
        if eval_return is not None:
            self.last_eval = eval_return
        parts = []
        if rate is not None:
            parts.append("board %s %ss/s" % (rate_text(rate), self.unit))
        if eta_s is not None:
            parts.append("ETA " + self._format_interval(eta_s))
        if self.last_episode is not None:
            parts.append("episode %.1f" % self.last_episode)
        if self.last_eval is not None:
            parts.append("eval %.1f" % self.last_eval)
        self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.update(done - self._bar.n)

    def advance(self, n=1):
        """``n`` more units done."""
        self._bar.update(n)

    def mirror_callbacks(self, episode_steps):
        """``on_episode`` and ``on_eval`` for mirror.train.train that move this bar."""
        return {"on_episode": lambda i, r: self.update((i + 1) * episode_steps, r),
                "on_eval": lambda step, r: self.update(step, eval_return=r)}

    def write(self, text):
        """A line of text on stderr above the bar, which is redrawn below it."""
        log(text)

    def close(self):
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rate_text(per_s):
    """A rate for people: whole units from 10 per second on, else two decimals."""
    return "%.0f" % per_s if per_s >= 10 else "%.2f" % per_s


def log(text):
    """A line on stderr that leaves any bar on the screen intact (it is redrawn below)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def train_mirror(config, dtype, desc, enabled=True, products="float"):
    """mirror.train.train(config, dtype, products=...) under a progress bar named ``desc``."""
    from microrl_host.mirror.train import train

    with Progress(config.total_steps, desc, enabled) as bar:
        return train(config, dtype, products=products,
                     **bar.mirror_callbacks(config.episode_length()))
