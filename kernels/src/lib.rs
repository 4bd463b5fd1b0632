//! Hot CPU kernels for folio. Paged attention lands here with the engine (see DESIGN.md).
