// Keyboard movement on the schedule board: ↑↓ within a doctor's column, ←→ to the
// next column that has visits, Home/End, PageUp/PageDown. Pure, so the board only
// has to scroll to the place and focus it.

export interface Place {
  col: number;
  row: number;
}

/**
 * Where `key` moves the focus from `at` on a board whose columns hold `lengths` rows
 * (`page` rows per PageUp/PageDown); null for a key the board leaves alone or a move
 * off the board's left or right edge. The row is kept inside the target column.
 */
export function moveFocus(key: string, at: Place, lengths: readonly number[], page: number): Place | null {
  let { col, row } = at;
  switch (key) {
    case 'ArrowDown':
      row += 1;
      break;
    case 'ArrowUp':
      row -= 1;
      break;
    case 'PageDown':
      row += page;
      break;
    case 'PageUp':
      row -= page;
      break;
    case 'Home':
      row = 0;
      break;
    case 'End':
      row = Number.MAX_SAFE_INTEGER;
      break;
    case 'ArrowRight':
    case 'ArrowLeft': {
      const dir = key === 'ArrowRight' ? 1 : -1;
      let next = col + dir;
      while (next >= 0 && next < lengths.length && lengths[next] === 0) next += dir;
      if (next < 0 || next >= lengths.length) return null;
      col = next;
      break;
    }
    default:
      return null;
  }
  const length = lengths[col] ?? 0;
  return { col, row: Math.min(Math.max(0, row), Math.max(0, length - 1)) };
}
