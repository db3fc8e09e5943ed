"""Period figures and the HTML report."""
