//! Go's `text/tabwriter`, column blocks and all, as kubectl's describers use it
//! (`tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)`).
//!
//! A cell is text ended by a tab; the text after a line's last tab is not a cell and never
//! pads. A column is aligned over a *block*: the consecutive lines that have a cell in it. A
//! line with fewer cells ends the blocks of the columns it lacks, so `Containers:` (no tab)
//! separates the `Name:\t...` lines above it from the `Image:\t...` lines below.

/// Buffers text until [`GoTabWriter::flush`] lays it out.
pub(crate) struct GoTabWriter {
    min_width: usize,
    padding: usize,
    pending: String,
    out: String,
}

impl GoTabWriter {
    /// kubectl describe's settings: minwidth 0, padding 2, padded with spaces.
    pub fn describe() -> Self {
        GoTabWriter {
            min_width: 0,
            padding: 2,
            pending: String::new(),
            out: String::new(),
        }
    }

    pub fn write(&mut self, s: &str) {
        self.pending.push_str(s);
    }

    /// Lays out everything written so far; later text starts new blocks.
    pub fn flush(&mut self) {
        let text = std::mem::take(&mut self.pending);
        if text.is_empty() {
            return;
        }
        let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
        // `a\nb\n` splits into a, b and an empty partial line, which prints nothing.
        let partial = !text.ends_with('\n');
        if !partial {
            lines.pop();
        }
        let mut widths = Vec::new();
        let n = lines.len();
        self.format(&lines, &mut widths, 0, n, partial);
    }

    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }

    /// Go's `Writer.format`: for the next column, find each block of lines having a cell in
    /// it, size the column over the block, and lay out the block's further columns likewise.
    fn format(
        &mut self,
        lines: &[Vec<&str>],
        widths: &mut Vec<usize>,
        mut line0: usize,
        line1: usize,
        partial: bool,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, widths, line0, this, partial);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, widths, line0, this, partial);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, widths, line0, line1, partial);
    }

    fn write_lines(
        &mut self,
        lines: &[Vec<&str>],
        widths: &[usize],
        line0: usize,
        line1: usize,
        partial: bool,
    ) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if let Some(&w) = widths.get(j) {
                    for _ in cell.chars().count()..w {
                        self.out.push(' ');
                    }
                }
            }
            if !(partial && i + 1 == lines.len()) {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GoTabWriter;

    fn lay(s: &str) -> String {
        let mut w = GoTabWriter::describe();
        w.write(s);
        w.finish()
    }

    #[test]
    fn blocks_end_at_lines_without_the_column() {
        assert_eq!(
            lay("Name:\tweb\nNamespace:\tdefault\nContainers:\n  c:\n    Image:\tx\n"),
            "Name:       web\nNamespace:  default\nContainers:\n  c:\n    Image:  x\n"
        );
        // A second column is aligned only over the lines that have it.
        assert_eq!(
            lay("Port:\t<unset>\t80/TCP\nTargetPort:\t8080/TCP\n"),
            "Port:        <unset>  80/TCP\nTargetPort:  8080/TCP\n"
        );
        // Empty cells pad; the last cell never does.
        assert_eq!(lay("Labels:\ta=b\n\tc=d\n"), "Labels:  a=b\n         c=d\n");
        assert_eq!(lay("Medium:\t\n"), "Medium:  \n");
    }

    #[test]
    fn flush_starts_new_blocks() {
        let mut w = GoTabWriter::describe();
        w.write("Name:\tx\n");
        w.flush();
        w.write("  Type\tReason\n  ----\t------\n");
        assert_eq!(w.finish(), "Name:  x\n  Type  Reason\n  ----  ------\n");
    }
}
