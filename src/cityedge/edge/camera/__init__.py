"""The camera workload: frames in, tracks, incidents and local decisions out."""
