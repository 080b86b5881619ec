"""Live transcription and live captions (meetings' ``liveTranscription``).

- :mod:`~herewith.captions.control`: when a room's captioner starts and stops (host, triggers, the session's
  end), the captioner processes, the live transcript kept per room session;
- :mod:`~herewith.captions.captioner`: the captioner participant process (aiortc, VAD, scheduling);
- :mod:`~herewith.captions.live`: utterances, LocalAgreement-2 and decode priorities (no I/O);
- :mod:`~herewith.captions.decoder`: Whisper decodes in worker processes;
- :mod:`~herewith.captions.service`: options, the Markdown transcript, its storage.
"""
