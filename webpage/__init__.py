"""The page: a small static web app over the projections API, with no data of its own."""
