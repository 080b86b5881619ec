"""Recordings: cloud recording of rooms and the five ``/v1/recordings`` calls (CONTRACT.md, "Recordings").

- :mod:`~herewith.recordings.control`: start/stop per room, triggers, the recorder launcher, ingest streams;
- :mod:`~herewith.recordings.ingest`: recorder chunks appended to WebM files on disk;
- :mod:`~herewith.recordings.finalize`: ffmpeg into mp4/mkv, storage, ``ready``, ``recording.finished``;
- :mod:`~herewith.recordings.storage`: the data directory or the meeting's S3 bucket;
- endpoints, service, repository, schemas, models: the domain's usual roles.
"""
