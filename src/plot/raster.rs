//! PNG drawing backend: plotters' bitmap backend with text rasterised by ab_glyph.

use super::*;

/// PNG drawing: plotters' bitmap backend, with text rasterised here by ab_glyph. (plotters'
/// own ab_glyph text drawing drops each glyph's side bearing and sizes text unlike its SVG
/// backend, so PNG labels came out unevenly spaced; this draws them at the SVG's em size.)
///
/// Charts are laid out on the SVG's canvas; the bitmap is [`PNG_SCALE`] times larger in each
/// direction, and every coordinate, stroke width and font size is scaled on the way, so the PNG
/// is the same drawing at print resolution (1680 px for a 560 px chart).
pub(super) struct Raster<'a>(pub(super) BitMapBackend<'a>);

/// How many bitmap pixels a chart pixel becomes, each way.
pub(super) const PNG_SCALE: u32 = 3;

fn up(p: BackendCoord) -> BackendCoord {
    (p.0 * PNG_SCALE as i32, p.1 * PNG_SCALE as i32)
}

/// A style with its stroke width scaled.
struct Wide<'s, S>(&'s S);

impl<S: BackendStyle> BackendStyle for Wide<'_, S> {
    fn color(&self) -> BackendColor {
        self.0.color()
    }
    fn stroke_width(&self) -> u32 {
        self.0.stroke_width() * PNG_SCALE
    }
}

pub(super) type RasterError<'a> =
    DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Raster<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        let (w, h) = self.0.get_size();
        (w / PNG_SCALE, h / PNG_SCALE)
    }
    fn ensure_prepared(&mut self) -> Result<(), RasterError<'a>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), RasterError<'a>> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Result<(), RasterError<'a>> {
        let (x, y) = up(p);
        let s = PNG_SCALE as i32;
        self.0.draw_rect((x, y), (x + s - 1, y + s - 1), &c, true)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_line(up(from), up(to), &Wide(style))
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), RasterError<'a>> {
        // A filled rectangle covers its last pixel: the scaled one covers the whole block.
        let s = PNG_SCALE as i32 - 1;
        let b = if fill {
            (up(b).0 + s, up(b).1 + s)
        } else {
            up(b)
        };
        self.0.draw_rect(up(a), b, &Wide(style), fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_path(path.into_iter().map(up), &Wide(style))
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), RasterError<'a>> {
        self.0
            .draw_circle(up(center), radius * PNG_SCALE, &Wide(style), fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.fill_polygon(vert.into_iter().map(up), style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), RasterError<'a>> {
        // Not used by the charts (no images in them): drawn unscaled at the scaled position.
        self.0.blit_bitmap(up(pos), size, src)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), RasterError<'a>> {
        use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font =
            FontRef::try_from_slice(FONT).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        // plotters' SVG backend writes font-size = size / 1.24 (the em); ab_glyph scales by the
        // ascent-to-descent height, which is larger than the em.
        let em = style.size() as f32 / 1.24 * PNG_SCALE as f32;
        let units = font.units_per_em().unwrap_or(2048.0);
        let scale = PxScale::from(em * font.height_unscaled() / units);
        let sf = font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut placed = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                caret += sf.kern(p, id);
            }
            placed.push((id, caret));
            caret += sf.h_advance(id);
            prev = Some(id);
        }
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -caret / 2.0,
            HPos::Right => -caret,
        };
        // Baseline below the anchor, in the text's own (unrotated) frame, y down.
        let (asc, desc) = (sf.ascent(), sf.descent());
        let baseline = match anchor.v_pos {
            VPos::Top => asc,
            VPos::Center => (asc + desc) / 2.0,
            VPos::Bottom => desc,
        };
        let trans = style.transform();
        let mut pixels = Vec::new();
        for (id, x) in placed {
            let glyph = id.with_scale_and_position(scale, point(x + dx, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    let (x, y) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                    pixels.push((trans.transform(x, y), cov));
                });
            }
        }
        let (w, h) = self.0.get_size();
        let pos = up(pos);
        for ((x, y), cov) in pixels {
            let (x, y) = (pos.0 + x, pos.1 + y);
            if cov > 0.0 && x >= 0 && y >= 0 && x < w as i32 && y < h as i32 {
                let c = BackendColor {
                    alpha: color.alpha * cov.min(1.0) as f64,
                    rgb: color.rgb,
                };
                self.0.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}
