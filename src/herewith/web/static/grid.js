// Pages of the room's grid and the active speaker: which of composite.js's tiles are on screen now.
// Shared by the room page (app.js) and the cloud recorder (recorder.js). In a group room the page reports the
// tiles of its current page to the server (`sfu_view`), which then forwards only those videos, at the
// simulcast layer each tile's size needs, and the audio of the loudest few speakers.
//
//   const pager = new GridPager({pageSize: pageSizeFor(width, height)});
//   pager.speaker('ann');                          // from the server's `active_speaker`
//   const {tiles, page, pages} = pager.arrange(gridTiles(people));   // this page's tiles, in order
//   pager.next(); pager.previous();
//
// Rules: at most `pageSize` tiles a page (9 on a laptop, 4 on a phone: pageSizeFor); screen shares are on
// every page and come first (gridLayout draws the first one large); our own camera stays first among the
// cameras; the order is stable (newcomers go last), except that the active speaker, when off the first page,
// takes the first-page slot of whoever there spoke least recently. That is the first vendor's paginated grid.

export const PAGE_SIZE_LAPTOP = 9;
export const PAGE_SIZE_PHONE = 4;

// Tiles a page for a window (screen) of width x height CSS pixels: 4 on a phone, else 9.
export function pageSizeFor(width, height) {
  return (width > 0 && width < 640) || (height > 0 && Math.min(width, height) < 360) ? PAGE_SIZE_PHONE : PAGE_SIZE_LAPTOP;
}

export class GridPager {
  constructor({pageSize = PAGE_SIZE_LAPTOP} = {}) {
    this.pageSize = pageSize;
    this.page = 0;
    this.pages = 1;
    this.order = [];            // camera tile keys in display order (all pages)
    this.activeSpeaker = null;  // participant id
    this.spokeAt = new Map();   // camera tile key -> sequence number of its last turn as active speaker
    this.turns = 0;
  }

  // The server's active speaker (participant id or null).
  speaker(participantId) {
    if (participantId === this.activeSpeaker) return false;
    this.activeSpeaker = participantId;
    if (participantId) this.spokeAt.set(`${participantId}:camera`, ++this.turns);
    return true;
  }

  next() { if (this.page < this.pages - 1) { this.page += 1; return true; } return false; }
  previous() { if (this.page > 0) { this.page -= 1; return true; } return false; }
  goTo(page) { this.page = Math.max(0, Math.min(page, this.pages - 1)); }

  // tiles: composite.js gridTiles() output. Returns {tiles (this page's, in order), page, pages, total}.
  arrange(tiles) {
    const screens = tiles.filter(t => t.source === 'screen');
    const cameras = new Map(tiles.filter(t => t.source !== 'screen').map(t => [t.key, t]));
    this.order = this.order.filter(k => cameras.has(k));
    for (const k of cameras.keys()) if (!this.order.includes(k)) this.order.push(k);
    const self = [...cameras.values()].find(t => t.self);
    if (self && this.order[0] !== self.key) this.order = [self.key, ...this.order.filter(k => k !== self.key)];
    for (const k of [...this.spokeAt.keys()]) if (!cameras.has(k)) this.spokeAt.delete(k);
    const slots = Math.max(1, this.pageSize - Math.min(screens.length, this.pageSize - 1));
    this.promote(`${this.activeSpeaker}:camera`, slots, self ? 1 : 0);
    this.pages = Math.max(1, Math.ceil(this.order.length / slots));
    this.page = Math.min(this.page, this.pages - 1);
    const shown = this.order.slice(this.page * slots, (this.page + 1) * slots).map(k => cameras.get(k));
    return {tiles: [...screens.slice(0, this.pageSize - 1), ...shown], page: this.page, pages: this.pages,
            total: cameras.size + screens.length};
  }

  // Bring camera `key` onto the first page (slots tiles; the first `pinned` are ours): it swaps places with the
  // first-page tile whose owner spoke least recently, so the page changes by one tile, not a reshuffle.
  promote(key, slots, pinned) {
    const at = this.order.indexOf(key);
    if (at < slots || at < 0) return;
    let victim = -1;
    let oldest = Infinity;
    for (let i = slots - 1; i >= pinned; i -= 1) {
      const turn = this.spokeAt.get(this.order[i]) || 0;
      if (turn < oldest) { oldest = turn; victim = i; }
    }
    if (victim < 0) return;
    [this.order[victim], this.order[at]] = [this.order[at], this.order[victim]];
  }
}
