import EmojiVoto

// The voting marble of the emojivoto demo. Start it with `marble run -- emojivoto-voting`:
// the launcher attests this binary and hands it its certificate and settings.
await runMarble("voting", VotingService.run)
